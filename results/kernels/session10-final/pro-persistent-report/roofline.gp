# mimo-bench report plot 'roofline': run `gnuplot roofline.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1100,560 font 'sans,10'
set output 'roofline.png'
set title 'measured step time vs roofline (efficiency in the labels)'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel 'ms per step'
set xtics rotate by -30
set rmargin 14
set key below
set grid ytics
plot 'roofline.dat' using 2:xtic(1) title 'measured step', 'roofline.dat' using 3 title 'roofline (bytes / calibrated bandwidth)'

set terminal svg noenhanced size 1100,560 font 'sans,10' background rgb 'white'
set output 'roofline.svg'
replot
unset output
