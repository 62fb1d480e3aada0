module taskframe-example

go 1.19

require taskframe v0.0.0

replace taskframe => ../../sdks/go
