# mimo-bench report plot 'projection': run `gnuplot projection.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1000,520 font 'sans,10'
set output 'projection.png'
set title 'projected node TPS (projection, not measured)'
set style data histogram
set style fill solid 0.85 border -1
set boxwidth 0.7
set yrange [0:*]
set ylabel 'tokens/s (projected)'
set xtics rotate by -30
set rmargin 14
set grid ytics
plot 'projection.dat' using 2:xtic(1) notitle

set terminal svg noenhanced size 1000,520 font 'sans,10' background rgb 'white'
set output 'projection.svg'
replot
unset output
