module switchyard/sandbox

go 1.22
