module spanprof/tests/pprofapp

go 1.19
