// Command dashboard-schema checks Grafana dashboard JSON files against Grafana's own schema types, as
// Grafana publishes them in github.com/grafana/grafana-foundation-sdk/go (Apache-2.0). No Grafana runs: it
// checks the JSON against the types Grafana's schema defines, not what a Grafana server accepts or draws.
//
//	dashboard-schema FILE...
//
// For each file: the SDK's strict decode into dashboard.Dashboard, the schema's Validate(), and checks of
// our own (every panel has a query and a datasource). It prints one line per problem, naming the file and
// the panel, and exits 1 when there is any (2 on a usage or read error). A clean file gets one "ok" line
// saying what was checked.
//
// Why the SDK's UnmarshalJSONStrict and not json.Decoder.DisallowUnknownFields: a panel's options, its
// fieldConfig.defaults.custom and its targets are `any`/interface values whose type depends on the panel's
// `type` and on each query's datasource. A Decoder accepts anything inside them (and cannot decode the
// Dataquery interface at all), and it does not notice a required field that is missing. UnmarshalJSONStrict
// hands each of them to the strict decoder of the plugin registered for it (plugins.RegisterDefaultPlugins:
// stat, timeseries, prometheus, ...) and refuses unknown fields, wrong types and missing required fields.
//
// Where the SDK (v0.0.22) falls short of that, and what this program does about it:
//   - UnmarshalJSONStrict returns a non-nil error holding an empty error list when it succeeds, and the
//     callers one level up take that for a failure and drop the value: every panel of the strictly decoded
//     dashboard is empty, and a strictly decoded panel has no targets and no options (nothing reported).
//     So the problems come from the strict decode's error list, and Validate() and our checks read the
//     SDK's ordinary decode (json.Unmarshal, which also hands options and targets to the plugins' types).
//   - Panel.UnmarshalJSONStrict decodes fieldConfig with plain json.Unmarshal (only defaults.custom
//     strictly), so an unknown field there passes: each panel's fieldConfig is decoded again with
//     FieldConfigSource.UnmarshalJSONStrict.
//   - Panel.UnmarshalJSONStrict picks a query's type from the query's own datasource only (it reads the
//     panel's after the targets), and keeps a query of no known type as a map, unchecked: each query is
//     decoded again with the panel's datasource type as the fallback, and one of no known type is reported.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

const sdkModule = "github.com/grafana/grafana-foundation-sdk/go"

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: dashboard-schema FILE...  (Grafana dashboard JSON, checked against "+sdkModule+" "+sdkVersion()+")")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed, unreadable := false, false
	for _, file := range os.Args[1:] {
		raw, err := os.ReadFile(file)
		if err != nil {
			fmt.Printf("%s: %v\n", file, err)
			unreadable = true
			continue
		}
		r := check(raw)
		for _, p := range r.problems {
			fmt.Printf("%s: %s\n", file, p)
		}
		if len(r.problems) > 0 {
			failed = true
		} else {
			fmt.Printf("%s: ok: %d panels, %d queries (%s %s)\n", file, r.panels, r.queries, sdkModule, sdkVersion())
		}
	}
	switch {
	case unreadable:
		os.Exit(2)
	case failed:
		os.Exit(1)
	}
}

// sdkVersion is the SDK version compiled in, as the build recorded it.
func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == sdkModule {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

// panelRef locates one panel of the file: its JSON path (panels[3], or panels[2].panels[0] inside a row),
// title and id, for the messages.
type panelRef struct {
	path  string
	title string
	id    string
	raw   json.RawMessage
}

func (p panelRef) String() string {
	id := "no id"
	if p.id != "" {
		id = "id " + p.id
	}
	return fmt.Sprintf("panel %q (%s, %s)", p.title, p.path, id)
}

type result struct {
	problems        []string
	panels, queries int
}

type checker struct {
	refs     []panelRef
	problems []string
	seen     map[string]bool
}

// report adds one problem at a JSON path of the dashboard, attributed to the panel that path is in.
func (c *checker) report(path, message string) {
	where := "dashboard"
	var best *panelRef
	for i := range c.refs {
		r := &c.refs[i]
		if (path == r.path || strings.HasPrefix(path, r.path+".")) && (best == nil || len(r.path) > len(best.path)) {
			best = r
		}
	}
	if best != nil {
		where = best.String()
		path = strings.TrimPrefix(strings.TrimPrefix(path, best.path), ".")
	}
	line := where + ": " + message
	if path != "" {
		line = where + ": " + path + ": " + message
	}
	if !c.seen[line] {
		c.seen[line] = true
		c.problems = append(c.problems, line)
	}
}

// reportErr adds every error of an SDK error list found at path (cog.BuildErrors, one cog.BuildError, or
// any other error as one message).
func (c *checker) reportErr(path string, err error) {
	if err == nil {
		return
	}
	join := func(p string) string {
		switch {
		case path == "":
			return p
		case p == "":
			return path
		}
		return path + "." + p
	}
	var list cog.BuildErrors
	if errors.As(err, &list) {
		// possibly empty: the SDK's strict decoders return an empty list on success
		for _, e := range list {
			c.report(join(e.Path), e.Message)
		}
		return
	}
	var one *cog.BuildError
	if errors.As(err, &one) {
		c.report(join(one.Path), one.Message)
		return
	}
	c.report(path, err.Error())
}

func check(raw []byte) result {
	c := &checker{seen: map[string]bool{}}
	var top any
	if err := json.Unmarshal(raw, &top); err != nil {
		return result{problems: []string{"not JSON: " + err.Error()}}
	}
	if _, ok := top.(map[string]any); !ok {
		return result{problems: []string{"not a JSON object, so not a dashboard"}}
	}
	var shape struct {
		Panels []json.RawMessage `json:"panels"`
	}
	_ = json.Unmarshal(raw, &shape) // panels that are not an array: the strict decode names that
	c.refs = panelRefs(shape.Panels, "panels")

	var strict dashboard.Dashboard
	c.reportErr("", strict.UnmarshalJSONStrict(raw))
	for _, r := range c.refs {
		c.strictPanelParts(r)
	}
	strictFailed := len(c.problems) > 0

	var full dashboard.Dashboard
	if err := json.Unmarshal(raw, &full); err != nil {
		// A wrong type stops the ordinary decode; the strict decode has named it already.
		if !strictFailed {
			c.report("", "the SDK cannot decode it: "+err.Error())
		}
		return result{problems: c.problems}
	}
	c.reportErr("", full.Validate())
	panels, queries := c.checkPanels(full)
	return result{problems: c.problems, panels: panels, queries: queries}
}

type datasourceType struct {
	Datasource *struct {
		Type string `json:"type"`
	} `json:"datasource"`
}

func (d datasourceType) typ() string {
	if d.Datasource == nil {
		return ""
	}
	return d.Datasource.Type
}

// strictPanelParts decodes strictly what Panel.UnmarshalJSONStrict leaves unchecked: the fieldConfig, and
// each query as the type Grafana runs it as (its own datasource's type, else the panel's; the SDK's strict
// decode reads the panel's datasource only after the targets, so there a query without a type of its own
// is kept as an unchecked map). A query of no registered type is a problem.
func (c *checker) strictPanelParts(r panelRef) {
	var p struct {
		datasourceType
		FieldConfig json.RawMessage   `json:"fieldConfig"`
		Targets     []json.RawMessage `json:"targets"`
	}
	if json.Unmarshal(r.raw, &p) != nil {
		return // a wrong type: the strict decode of the dashboard names it
	}
	if len(p.FieldConfig) > 0 && string(p.FieldConfig) != "null" {
		var fc dashboard.FieldConfigSource
		c.reportErr(r.path+".fieldConfig", fc.UnmarshalJSONStrict(p.FieldConfig))
	}
	for i, t := range p.Targets {
		at := r.path + ".targets[" + strconv.Itoa(i) + "]"
		var own datasourceType
		_ = json.Unmarshal(t, &own)
		typ := own.typ()
		if typ == "" {
			typ = p.typ()
		}
		if q, err := cog.UnmarshalDataquery(t, typ); err == nil {
			if _, unknown := q.(variants.UnknownDataquery); unknown {
				c.report(at, fmt.Sprintf("query of no known type (datasource type %q), so its fields were not checked", typ))
				continue
			}
		}
		_, err := cog.StrictUnmarshalDataquery(t, typ)
		c.reportErr(at, err)
	}
}

// panelRefs lists the panels of a panels array, and those of its rows.
func panelRefs(panels []json.RawMessage, path string) []panelRef {
	var refs []panelRef
	for i, raw := range panels {
		var p struct {
			Title  string            `json:"title"`
			Id     json.RawMessage   `json:"id"`
			Panels []json.RawMessage `json:"panels"`
		}
		_ = json.Unmarshal(raw, &p) // a panel that is not an object is the strict decode's to report
		ref := panelRef{path: path + "[" + strconv.Itoa(i) + "]", title: p.Title, raw: raw}
		if len(p.Id) > 0 && string(p.Id) != "null" {
			ref.id = string(p.Id)
		}
		refs = append(refs, ref)
		refs = append(refs, panelRefs(p.Panels, ref.path+".panels")...)
	}
	return refs
}

// checkPanels: every panel (rows' included, rows themselves excepted) has at least one query and a
// datasource; a datasource given as a variable ($name or ${name}) names
// a datasource variable of the dashboard. Returns the panels and queries it saw.
func (c *checker) checkPanels(d dashboard.Dashboard) (panels, queries int) {
	variables := map[string]bool{}
	for _, v := range d.Templating.List {
		if v.Type == dashboard.VariableTypeDatasource {
			variables[v.Name] = true
		}
	}
	checkOne := func(path string, p dashboard.Panel) {
		panels++
		queries += len(p.Targets)
		if len(p.Targets) == 0 {
			c.report(path, "no targets: the panel has no query")
		}
		ds := p.Datasource
		uid, typ := "", ""
		if ds != nil && ds.Uid != nil {
			uid = *ds.Uid
		}
		if ds != nil && ds.Type != nil {
			typ = *ds.Type
		}
		if uid == "" && typ == "" {
			c.report(path, "no datasource: the panel names neither a datasource uid nor a type")
			return
		}
		if name, isVar := variableName(uid); isVar && !variables[name] {
			c.report(path+".datasource", fmt.Sprintf("uid %q names no datasource variable of the dashboard", uid))
		}
	}
	for i, por := range d.Panels {
		path := "panels[" + strconv.Itoa(i) + "]"
		switch {
		case por.Panel != nil:
			checkOne(path, *por.Panel)
		case por.RowPanel != nil:
			for j, p := range por.RowPanel.Panels {
				checkOne(path+".panels["+strconv.Itoa(j)+"]", p)
			}
		default:
			c.report(path, "neither a panel nor a row (no type)")
		}
	}
	return panels, queries
}

// variableName returns the variable a datasource uid refers to: "${name}" or "$name".
func variableName(uid string) (string, bool) {
	if strings.HasPrefix(uid, "${") && strings.HasSuffix(uid, "}") {
		return uid[2 : len(uid)-1], true
	}
	if strings.HasPrefix(uid, "$") && len(uid) > 1 {
		return uid[1:], true
	}
	return "", false
}
