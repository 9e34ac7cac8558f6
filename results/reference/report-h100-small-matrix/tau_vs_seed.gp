# mimo-bench report plot 'tau_vs_seed': run `gnuplot tau_vs_seed.gp` in this directory to redraw it.
set encoding utf8
set terminal pngcairo noenhanced size 1000,480 font 'sans,10'
set output 'tau_vs_seed.png'
set title 'Mean tau by suite vs the seed''s table (block 8) — acceptance: forced (profile mimo-published), not measured'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel 'mean tau'
set key below
set grid ytics
plot 'tau_vs_seed.dat' using 2:xtic(1) title 'fp4 on, dflash B8, eager (forced acc.)', 'tau_vs_seed.dat' using 3 title 'fp4 on, dflash B8, graph (forced acc.)', 'tau_vs_seed.dat' using 4 title 'fp4 off, dflash B8, eager (forced acc.)', 'tau_vs_seed.dat' using 5 title 'fp4 off, dflash B8, graph (forced acc.)', 'tau_vs_seed.dat' using 6 title 'seed (published)' lc rgb 'black'

set terminal svg noenhanced size 1000,480 font 'sans,10' background rgb 'white'
set output 'tau_vs_seed.svg'
replot
unset output
