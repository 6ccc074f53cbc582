module github.com/patchgate/patchgate

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.3.0
	go.yaml.in/yaml/v3 v3.0.6
)
