# mimo-bench report plot 'kernel_categories': run `gnuplot kernel_categories.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1100,560 font 'sans,10'
set output 'kernel_categories.png'
set title 'step time by kernel category (µs per decode round)'
set style data histogram
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.7
set yrange [0:*]
set ylabel 'µs per decode round'
set xtics rotate by -30
set rmargin 14
set key below
set grid ytics
plot 'kernel_categories.dat' using 2:xtic(1) title 'attention' lc rgb '#9467bd', 'kernel_categories.dat' using 3 title 'moe' lc rgb '#d62728', 'kernel_categories.dat' using 4 title 'dense-gemv' lc rgb '#1f77b4', 'kernel_categories.dat' using 5 title 'norm/rope' lc rgb '#ff7f0e', 'kernel_categories.dat' using 6 title 'sampling/verify' lc rgb '#2ca02c', 'kernel_categories.dat' using 7 title 'draft' lc rgb '#17becf', 'kernel_categories.dat' using 8 title 'comm' lc rgb '#8c564b', 'kernel_categories.dat' using 9 title 'memcpy' lc rgb '#7f7f7f', 'kernel_categories.dat' using 10 title 'other' lc rgb '#bcbd22'

set terminal svg noenhanced size 1100,560 font 'sans,10' background rgb 'white'
set output 'kernel_categories.svg'
replot
unset output
