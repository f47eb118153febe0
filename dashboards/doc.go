// Package dashboards is loopgate's Grafana dashboards as code.
package dashboards
