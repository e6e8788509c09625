/** The forms of names and quantities the settings accept, shared by the sections that take them. */

/** A Kubernetes label key (with an optional DNS prefix). */
export const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A Kubernetes label value (may be empty). */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
/** RFC 1123 label: Kubernetes namespace and Service names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: host names, and the names of ConfigMaps, Secrets and Deployments. */
export const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A lower-case PostgreSQL identifier: PgBouncer and SQL take these unquoted (user and database names). */
export const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Kubernetes CPU and memory quantities as this program accepts them. */
export const CPU_QUANTITY = /^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$/;
export const MEMORY_QUANTITY = /^[1-9][0-9]*(Ki|Mi|Gi)$/;
/** `a.b.c.d/n`, IPv4 only (the pod network the program targets). */
export const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d|[12]\d|3[0-2])$/;
/** A Vault mount or secret path: segments of letters, digits, `_`, `.` and `-`. */
export const VAULT_PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
