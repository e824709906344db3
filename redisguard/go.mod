module github.com/resilienthttp/resilienthttp/redisguard

go 1.26.0

replace github.com/resilienthttp/resilienthttp => ../

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/resilienthttp/resilienthttp v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	github.com/sony/gobreaker/v2 v2.4.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/time v0.14.0 // indirect
)
