# mimo-bench report plot 'decode_tps': run `gnuplot decode_tps.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1100,560 font 'sans,10'
set output 'decode_tps.png'
set title 'decode TPS per configuration (median, p5-p95)'
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel 'decode tokens/s (median; bars p5-p95)'
set xtics rotate by -30
set rmargin 14
set key below
set grid ytics
plot 'decode_tps.dat' using 2:3:4:xtic(1) title 'coding'

set terminal svg noenhanced size 1100,560 font 'sans,10' background rgb 'white'
set output 'decode_tps.svg'
replot
unset output
