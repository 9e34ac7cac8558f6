# mimo-bench report plot 'tau_hist_coding': run `gnuplot tau_hist_coding.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 900,480 font 'sans,10'
set output 'tau_hist_coding.png'
set title 'tau histogram, suite coding (fraction of rounds) — acceptance: forced (profile mimo-published), not measured'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set xlabel 'tau (accepted drafts + 1)'
set ylabel 'fraction of rounds'
set key below
set grid ytics
plot 'tau_hist_coding.dat' using 2:xtic(1) title 'fp4 on, dflash B8, eager (forced acc.)', 'tau_hist_coding.dat' using 3 title 'fp4 on, dflash B8, graph (forced acc.)', 'tau_hist_coding.dat' using 4 title 'fp4 off, dflash B8, eager (forced acc.)', 'tau_hist_coding.dat' using 5 title 'fp4 off, dflash B8, graph (forced acc.)', 'tau_hist_coding.dat' using 6 with linespoints lw 2 pt 7 lc rgb 'black' title 'published: seed mean 6.30 at B=8, truncated geometric'

set terminal svg noenhanced size 900,480 font 'sans,10' background rgb 'white'
set output 'tau_hist_coding.svg'
replot
unset output
