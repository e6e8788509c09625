/**
 * Reads a pgbouncer.ini back (the rendered one, or one from a cluster): the parameters of one section, or the
 * value of one. What the policy pack, the pod template's no-reload hash and the local harness read, each from
 * the text it has. A parameter set twice keeps its last value, as PgBouncer does.
 */
export function iniParameters(ini: string, section: string): Map<string, string> {
  const found = new Map<string, string>();
  let current = "";
  for (const raw of ini.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = header[1].trim();
      continue;
    }
    // A key is a parameter, a database name (`*` too) or a peer id.
    const kv = /^([^=\s][^=]*?)\s*=\s*(.*)$/.exec(line);
    if (kv && current === section) found.set(kv[1], kv[2].trim());
  }
  return found;
}

/** The value of `name` in `section`, or undefined. */
export function iniParameter(ini: string, section: string, name: string): string | undefined {
  return iniParameters(ini, section).get(name);
}
