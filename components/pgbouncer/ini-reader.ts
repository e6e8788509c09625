/**
 * Reads a pgbouncer.ini back (the rendered one, or one from a cluster): the value of one parameter in one
 * section. What the policy pack and the local harness read, each from the text it has.
 */
export function iniParameter(ini: string, section: string, name: string): string | undefined {
  let current = "";
  for (const raw of ini.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = header[1].trim();
      continue;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (kv && current === section && kv[1] === name) return kv[2].trim();
  }
  return undefined;
}
