module github.com/patchgate/patchgate

go 1.26.8
