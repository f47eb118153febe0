package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Datasource plugin types the dashboards target.
const (
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusType = "prometheus"
)

// DatasourceVar is the one datasource variable every dashboard has; every
// panel, target and query variable refers to it, never to a uid.
const DatasourceVar = "datasource"

// Result formats of a ClickHouse target, as the plugin numbers them
// (sqlutil.FormatQueryOption).
const (
	FormatTimeSeries = 0 // long rows (time, labels..., values...) become one series per label set
	FormatTable      = 1
)

// viz is a panel type.
type viz int

const (
	vizTimeSeries viz = iota
	vizBars           // a time series drawn as bars (per-hour sums)
	vizStat
	vizTable
	vizBarGauge
)

// Panel is one panel as loopgate writes it: what Grafana shows and, for
// ClickHouse panels, the query with the columns it returns (the tests run
// it and compare).
type Panel struct {
	Title       string
	Description string
	Unit        string            // Grafana unit id: reqps, percentunit, ms, currencyUSD, short, s
	ColumnUnits map[string]string // tables: units of individual columns
	viz         viz
	// SQL is the ClickHouse query (with the plugin's macros); Format is
	// FormatTimeSeries or FormatTable.
	SQL    string
	Format int
	// Columns are the column names SQL returns, in order.
	Columns []string
	// Prom are the PromQL targets of a Prometheus panel.
	Prom  []PromTarget
	Width uint32 // grid columns of 24; default 12
}

// PromTarget is one PromQL query and its legend.
type PromTarget struct {
	Expr, Legend string
}

// Variable is a query variable of a ClickHouse dashboard (multi-value,
// with All), or a text box when Query is empty.
type Variable struct {
	Name, Label, Description string
	Query                    string // ClickHouse SQL returning one column of values
	Default                  string // text box: the initial value
}

// Dashboard is one dashboard: its panels in reading order.
type Dashboard struct {
	UID, Title, Description string
	File                    string // the JSON file under dashboards/
	DatasourceType          string // ClickHouseType or PrometheusType
	Variables               []Variable
	Panels                  []Panel
}

// All returns every dashboard loopgate ships, in the order of the docs.
func All() []Dashboard {
	return []Dashboard{overview(), orchestrators(), customers(), theLoop(), livepeer(), pipelineHealth()}
}

func (d Dashboard) ref() common.DataSourceRef {
	t, uid := d.DatasourceType, "${"+DatasourceVar+"}"
	return common.DataSourceRef{Type: &t, Uid: &uid}
}

// Build turns d into the SDK's dashboard model.
func (d Dashboard) Build() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder(d.Title).
		Uid(d.UID).
		Description(d.Description).
		Tags([]string{"loopgate"}).
		Readonly(). // provisioned: changes belong in this package
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser)
	b.WithVariable(dashboard.NewDatasourceVariableBuilder(DatasourceVar).
		Label("Data source").
		Type(d.DatasourceType))
	for _, v := range d.Variables {
		if v.Query == "" {
			b.WithVariable(dashboard.NewTextBoxVariableBuilder(v.Name).
				Label(v.Label).Description(v.Description).
				DefaultValue(dashboard.StringOrMap{String: cog.ToPtr(v.Default)}).
				Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr(v.Default)}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(v.Default)}}))
			continue
		}
		q := v.Query
		b.WithVariable(dashboard.NewQueryVariableBuilder(v.Name).
			Label(v.Label).Description(v.Description).
			Datasource(d.ref()).
			Query(dashboard.StringOrMap{String: &q}).
			Definition(q).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}}))
	}
	var x, y, rowH uint32
	for i, p := range d.Panels {
		w := p.Width
		if w == 0 {
			w = 12
		}
		h := uint32(8)
		if p.viz == vizStat {
			h = 4
		}
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		pos := dashboard.GridPos{X: x, Y: y, W: w, H: h}
		x += w
		rowH = max(rowH, h)
		pb, err := d.panel(p, uint32(i+1), pos)
		if err != nil {
			return dashboard.Dashboard{}, fmt.Errorf("dashboard %s, panel %q: %w", d.UID, p.Title, err)
		}
		b.WithPanel(pb)
	}
	out, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("build dashboard %s: %w", d.UID, err)
	}
	return out, nil
}

// targets are p's queries for the SDK.
func (d Dashboard) targets(p Panel) ([]cog.Builder[variants.Dataquery], error) {
	if d.DatasourceType == PrometheusType {
		if len(p.Prom) == 0 {
			return nil, fmt.Errorf("no PromQL target")
		}
		var ts []cog.Builder[variants.Dataquery]
		for i, t := range p.Prom {
			ts = append(ts, prometheus.NewDataqueryBuilder().
				Datasource(d.ref()).RefId(string(rune('A'+i))).
				Expr(t.Expr).LegendFormat(t.Legend).Range())
		}
		return ts, nil
	}
	if p.SQL == "" {
		return nil, fmt.Errorf("no SQL")
	}
	ref := d.ref()
	return []cog.Builder[variants.Dataquery]{variants.NewUnknownDataqueryBuilderFromObject(variants.UnknownDataquery{
		"datasource": map[string]any{"type": *ref.Type, "uid": *ref.Uid},
		"editorType": "sql",
		"rawSql":     p.SQL,
		"format":     p.Format,
		"refId":      "A",
	})}, nil
}

func (d Dashboard) panel(p Panel, id uint32, pos dashboard.GridPos) (cog.Builder[dashboard.Panel], error) {
	ts, err := d.targets(p)
	if err != nil {
		return nil, err
	}
	overrides := func(add func(name string, props []dashboard.DynamicConfigValue)) {
		for _, col := range sortedKeys(p.ColumnUnits) {
			add(col, []dashboard.DynamicConfigValue{{Id: "unit", Value: p.ColumnUnits[col]}})
		}
	}
	switch p.viz {
	case vizTimeSeries, vizBars:
		b := timeseries.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).Unit(p.Unit).
			Datasource(d.ref()).GridPos(pos).Targets(ts).FillOpacity(10).
			Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
			Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
		if p.viz == vizBars {
			b.DrawStyle(common.GraphDrawStyleBars).FillOpacity(60)
		}
		return b, nil
	case vizStat:
		return stat.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).Unit(p.Unit).
			Datasource(d.ref()).GridPos(pos).Targets(ts), nil
	case vizBarGauge:
		return bargauge.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).Unit(p.Unit).
			Datasource(d.ref()).GridPos(pos).Targets(ts).Orientation(common.VizOrientationHorizontal).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"})), nil
	case vizTable:
		b := table.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).Unit(p.Unit).
			Datasource(d.ref()).GridPos(pos).Targets(ts)
		overrides(func(name string, props []dashboard.DynamicConfigValue) { b.OverrideByName(name, props) })
		return b, nil
	}
	return nil, fmt.Errorf("unknown panel type %d", p.viz)
}

// JSON is d as Grafana imports it: indented, with a final newline, the
// bytes committed under dashboards/.
func (d Dashboard) JSON() ([]byte, error) {
	m, err := d.Build()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

// Export writes every dashboard's JSON into dir (go generate runs it with
// the package directory).
func Export(dir string) error {
	for _, d := range All() {
		js, err := d.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.File), js, 0o644); err != nil {
			return fmt.Errorf("write dashboard %s: %w", d.UID, err)
		}
	}
	return nil
}
