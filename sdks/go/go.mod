module taskframe

go 1.19
