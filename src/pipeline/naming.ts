/** Store names from the `storage.name` template: {date} {time} {acq} and metadata fields ({sample}, {user}, {project}). */
export function acquisitionName(template: string, acq: number, meta: Record<string, unknown>): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const date = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const fields: Record<string, string> = { date, time, acq: String(acq) };
  for (const [k, v] of Object.entries(meta)) if (typeof v === 'string') fields[k] = v;
  const name = template.replace(/\{(\w+)\}/g, (_, k: string) => fields[k] ?? '');
  // Only characters that are safe in a file name on every OS the data may travel to.
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || `acq${acq}`;
}
