module spanprof/demo-service

go 1.19
