/**
 * The ten-panel PgBouncer dashboard, built with Grafana's foundation SDK. Queries come from `queries.ts`
 * (the same expressions the alerts compare) and panel thresholds from the derived alert thresholds.
 */
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import {
  DashboardBuilder,
  DatasourceVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  type Dashboard,
  type Threshold,
  type ThresholdsConfig,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanelBuilder } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";
import {
  BigValueColorMode,
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  ReduceDataOptionsBuilder,
} from "@grafana/grafana-foundation-sdk/common";
import { type QueryContext, queries } from "./queries";

/** The dashboard variable every panel's datasource refers to. */
export const DATASOURCE_VARIABLE = "datasource";
const DATASOURCE = { type: "prometheus", uid: `\${${DATASOURCE_VARIABLE}}` };

export interface DashboardOptions {
  readonly uid: string;
  readonly title: string;
  /** Name of the Prometheus datasource the variable starts on. */
  readonly datasourceName: string;
  readonly context: QueryContext;
}

export interface PanelQuery {
  readonly expr: string;
  readonly legend: string;
}

/** One panel as data: what it shows and where its thresholds are (all derived). */
export interface PanelSpec {
  readonly title: string;
  readonly kind: "timeseries" | "stat";
  readonly unit: string;
  readonly description: string;
  readonly queries: readonly PanelQuery[];
  /** Values where the colour turns (warning, then critical); empty for none. */
  readonly thresholds: readonly { readonly value: number; readonly color: "orange" | "red" }[];
}

export function panelSpecs(c: QueryContext): PanelSpec[] {
  const q = queries(c);
  const t = c.thresholds;
  const pool = "{{instance}} {{database}}";
  return [
    {
      title: "Active client connections",
      kind: "timeseries",
      unit: "short",
      description: `Clients linked to a server connection, per process; orange at 80% of max_client_conn (${t.maxClientConn}).`,
      queries: [
        { expr: q.activeClients, legend: `active ${pool}` },
        { expr: q.waitingClients, legend: `waiting ${pool}` },
      ],
      thresholds: [{ value: t.utilizationClientConnections, color: "orange" }],
    },
    {
      title: "Server connections",
      kind: "timeseries",
      unit: "short",
      description:
        `Connections to PostgreSQL per process: busy, idle, used. Alerts: utilization above ` +
        `${t.utilizationServerConnections}, exhaustion at ${t.exhaustionServerConnections} of ${t.serverCap}.`,
      queries: [
        { expr: q.busyServerConnections, legend: `busy ${pool}` },
        { expr: q.idleServerConnections, legend: `idle ${pool}` },
        { expr: q.usedServerConnections, legend: `used ${pool}` },
      ],
      thresholds: [
        { value: t.utilizationServerConnections, color: "orange" },
        { value: t.exhaustionServerConnections, color: "red" },
      ],
    },
    {
      title: "Pool size vs limits",
      kind: "timeseries",
      unit: "short",
      description: `Server connections of each database against its pool size and max_db_connections (${t.serverCap}, red line).`,
      queries: [
        { expr: q.databaseCurrentConnections, legend: "current {{instance}} {{name}}" },
        { expr: q.databasePoolSize, legend: "pool_size {{instance}} {{name}}" },
        { expr: q.databaseMaxConnections, legend: "max_db_connections {{instance}} {{name}}" },
      ],
      thresholds: [{ value: t.serverCap, color: "red" }],
    },
    {
      title: "Query rate",
      kind: "timeseries",
      unit: "reqps",
      description: "Queries and transactions per second through the pooler.",
      queries: [
        { expr: q.queryRate, legend: `queries ${pool}` },
        { expr: q.transactionRate, legend: `transactions ${pool}` },
      ],
      thresholds: [],
    },
    {
      title: "Average query duration",
      kind: "timeseries",
      unit: "s",
      description: "Time PostgreSQL spent per query, averaged over the rate window.",
      queries: [{ expr: q.averageQueryDurationSeconds, legend: pool }],
      thresholds: [],
    },
    {
      title: "Connection wait time",
      kind: "timeseries",
      unit: "s",
      description:
        `Average wait for a server connection per transaction (alert above ${t.averageWaitSeconds * 1000} ms), ` +
        `and the oldest waiter (whole seconds only).`,
      queries: [
        { expr: q.averageWaitSeconds, legend: `average ${pool}` },
        { expr: q.maxWaitSeconds, legend: `oldest waiter ${pool}` },
      ],
      thresholds: [{ value: t.averageWaitSeconds, color: "red" }],
    },
    {
      title: "Total client connections",
      kind: "stat",
      unit: "short",
      description: `Client connections per process, of max_client_conn ${t.maxClientConn}.`,
      queries: [{ expr: q.totalClients, legend: "{{instance}}" }],
      thresholds: [{ value: t.utilizationClientConnections, color: "orange" }],
    },
    {
      title: "Pool utilization %",
      kind: "stat",
      unit: "percentunit",
      description: `Busy server connections of max_db_connections (${t.serverCap}).`,
      queries: [{ expr: q.serverUtilization, legend: pool }],
      thresholds: [
        { value: t.utilizationRatio, color: "orange" },
        { value: t.exhaustionServerConnections / t.serverCap, color: "red" },
      ],
    },
    {
      title: "Waiting clients",
      kind: "stat",
      unit: "short",
      description: `Clients queued for a server connection (alert above ${t.waitingClients}).`,
      queries: [{ expr: q.waitingClients, legend: pool }],
      thresholds: [{ value: t.waitingClients + 1, color: "red" }],
    },
    {
      title: "Connection errors",
      kind: "stat",
      unit: "short",
      description:
        "Errors per second through the PgBouncerHighErrors proxy (the exporter has no errors metric): " +
        "clients about to hit query_wait_timeout, and cancel requests in flight.",
      queries: [
        { expr: q.timeoutErrorsPerSecond, legend: `query_wait_timeout ${pool}` },
        { expr: q.cancelsPerSecond, legend: `cancels ${pool}` },
      ],
      thresholds: [{ value: t.errorsPerSecond, color: "red" }],
    },
  ];
}

function thresholdSteps(spec: PanelSpec): cog.Builder<ThresholdsConfig> {
  const steps: Threshold[] = [{ value: null, color: "green" }, ...spec.thresholds];
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps);
}

function targets(spec: PanelSpec): DataqueryBuilder[] {
  return spec.queries.map((q, i) =>
    new DataqueryBuilder()
      .expr(q.expr)
      .legendFormat(q.legend)
      .refId(String.fromCharCode(65 + i))
      .datasource(DATASOURCE),
  );
}

/** The dashboard model (Grafana's JSON), ready for `grafana.oss.Dashboard.configJson`. */
export function buildDashboard(o: DashboardOptions): Dashboard {
  const b = new DashboardBuilder(o.title)
    .uid(o.uid)
    .tags(["pgbouncer", "clipper"])
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .withVariable(
      new DatasourceVariableBuilder(DATASOURCE_VARIABLE)
        .label("Datasource")
        .type("prometheus")
        .current({ text: o.datasourceName, value: o.datasourceName }),
    );
  panelSpecs(o.context).forEach((spec, i) => {
    const stat = spec.kind === "stat";
    const width = stat ? 6 : 12;
    const gridPos = stat
      ? { x: (i - 6) * width, y: 24, w: width, h: 5 }
      : { x: (i % 2) * width, y: Math.floor(i / 2) * 8, w: width, h: 8 };
    if (stat) {
      b.withPanel(
        new StatPanelBuilder()
          .title(spec.title)
          .description(spec.description)
          .datasource(DATASOURCE)
          .unit(spec.unit)
          .gridPos(gridPos)
          .targets(targets(spec))
          .thresholds(thresholdSteps(spec))
          .colorMode(BigValueColorMode.Background)
          .reduceOptions(new ReduceDataOptionsBuilder().calcs(["lastNotNull"])),
      );
    } else {
      b.withPanel(
        new TimeseriesPanelBuilder()
          .title(spec.title)
          .description(spec.description)
          .datasource(DATASOURCE)
          .unit(spec.unit)
          .gridPos(gridPos)
          .targets(targets(spec))
          .thresholds(thresholdSteps(spec))
          .thresholdsStyle(
            new GraphThresholdsStyleConfigBuilder().mode(
              spec.thresholds.length > 0 ? GraphThresholdsStyleMode.Dashed : GraphThresholdsStyleMode.Off,
            ),
          ),
      );
    }
  });
  return b.build();
}

/** The dashboard as the JSON text Grafana stores. */
export function renderDashboardJson(o: DashboardOptions): string {
  return JSON.stringify(buildDashboard(o), null, 2);
}
