# mimo-bench report plot 'timeline': run `gnuplot timeline.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1100,420 font 'sans,10'
set output 'timeline.png'
set title 'one decode round''s kernels: fp4 on, AR, persistent'
set yrange [-0.6:9-0.4]
set ytics ('attention' 0, 'moe' 1, 'dense-gemv' 2, 'norm/rope' 3, 'sampling/verify' 4, 'draft' 5, 'comm' 6, 'memcpy' 7, 'other' 8)
set xlabel 'time in the round (us)'
set grid xtics
set style fill solid 0.85 border -1
plot 'timeline.dat' using (($1+$2)/2):3:1:2:($3-0.35):($3+0.35):4 with boxxyerror lc rgb variable notitle

set terminal svg noenhanced size 1100,420 font 'sans,10' background rgb 'white'
set output 'timeline.svg'
replot
unset output
