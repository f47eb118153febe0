// Package dashboards is loopgate's Grafana dashboards as code.
package dashboards

//go:generate go run ./internal/export json
