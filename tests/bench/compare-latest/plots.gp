# Drawn by gnuplot from the .dat files beside it (scripts/bench-compare runs it).
# Each plot starts from gnuplot's defaults (reset), so none inherits another's settings.

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'throughput.svg'
set logscale x 2
set xlabel 'clients (one request in flight each)'
set ylabel 'committed per second'
set yrange [0:*]
set title 'Throughput against clients'
plot 'throughput.dat' using 1:2 with linespoints lw 2 title 'Tally PBFT (n=4)', 'throughput.dat' using 1:3 with linespoints lw 2 title 'Tally Raft (n=3)', 'throughput.dat' using 1:4 with linespoints lw 2 title 'etcd (n=3)'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'throughput.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'latency-cdf-c1.svg'
set logscale x 10
set xlabel 'latency (ms)'
set ylabel 'percentile'
set yrange [0:100]
set key bottom right
set title 'Latency CDF, 1 client(s)'
plot 'cdf-c1.dat' using 2:1 with lines lw 2 title 'Tally PBFT', 'cdf-c1.dat' using 3:1 with lines lw 2 title 'Tally Raft', 'cdf-c1.dat' using 4:1 with lines lw 2 title 'etcd'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'latency-cdf-c1.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'latency-cdf-c4.svg'
set logscale x 10
set xlabel 'latency (ms)'
set ylabel 'percentile'
set yrange [0:100]
set key bottom right
set title 'Latency CDF, 4 client(s)'
plot 'cdf-c4.dat' using 2:1 with lines lw 2 title 'Tally PBFT', 'cdf-c4.dat' using 3:1 with lines lw 2 title 'Tally Raft', 'cdf-c4.dat' using 4:1 with lines lw 2 title 'etcd'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'latency-cdf-c4.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'latency-cdf-c16.svg'
set logscale x 10
set xlabel 'latency (ms)'
set ylabel 'percentile'
set yrange [0:100]
set key bottom right
set title 'Latency CDF, 16 client(s)'
plot 'cdf-c16.dat' using 2:1 with lines lw 2 title 'Tally PBFT', 'cdf-c16.dat' using 3:1 with lines lw 2 title 'Tally Raft', 'cdf-c16.dat' using 4:1 with lines lw 2 title 'etcd'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'latency-cdf-c16.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'latency-cdf-c64.svg'
set logscale x 10
set xlabel 'latency (ms)'
set ylabel 'percentile'
set yrange [0:100]
set key bottom right
set title 'Latency CDF, 64 client(s)'
plot 'cdf-c64.dat' using 2:1 with lines lw 2 title 'Tally PBFT', 'cdf-c64.dat' using 3:1 with lines lw 2 title 'Tally Raft', 'cdf-c64.dat' using 4:1 with lines lw 2 title 'etcd'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'latency-cdf-c64.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'latency-cdf-c256.svg'
set logscale x 10
set xlabel 'latency (ms)'
set ylabel 'percentile'
set yrange [0:100]
set key bottom right
set title 'Latency CDF, 256 client(s)'
plot 'cdf-c256.dat' using 2:1 with lines lw 2 title 'Tally PBFT', 'cdf-c256.dat' using 3:1 with lines lw 2 title 'Tally Raft', 'cdf-c256.dat' using 4:1 with lines lw 2 title 'etcd'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'latency-cdf-c256.png'
replot
set output

reset
set datafile missing 'NaN'
set grid
set key top left
set terminal svg size 760,460 dynamic font 'sans,12'
set output 'scaling.svg'
set xtics 1
set key below horizontal maxrows 2 width 2
set xlabel 'replicas (n)'
set ylabel 'committed per second'
set yrange [0:*]
set y2label 'messages between replicas per request'
set y2range [0:*]
set y2tics
set title 'Cost against n, 64 clients'
plot 'scaling-pbft.dat' using 1:2 with linespoints lw 2 title 'Tally PBFT committed/s', 'scaling-raft.dat' using 1:2 with linespoints lw 2 title 'Tally Raft committed/s', 'scaling-pbft.dat' using 1:4 axes x1y2 with linespoints dt 2 lw 2 title 'Tally PBFT messages/request', 'scaling-raft.dat' using 1:4 axes x1y2 with linespoints dt 2 lw 2 title 'Tally Raft messages/request'
set terminal pngcairo size 960,580 font 'sans,11'
set output 'scaling.png'
replot
set output
