/** A minimal YAML writer for plain data (objects, arrays, strings, numbers, booleans, null). */
function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  // Plain scalars only for simple identifiers; everything else double-quoted (JSON escaping is valid YAML).
  return /^[A-Za-z_][A-Za-z0-9_.\-/]*$/.test(s) && !['true', 'false', 'null', 'yes', 'no', 'on', 'off'].includes(s.toLowerCase())
    ? s
    : JSON.stringify(s);
}

export function toYaml(v: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return `${pad}[]\n`;
    return v
      .map((item) => {
        if (item !== null && typeof item === 'object' && Object.keys(item).length > 0) {
          const inner = toYaml(item, indent + 2);
          return `${pad}- ${inner.slice(indent + 2)}`;
        }
        return `${pad}- ${scalar(item)}\n`;
      })
      .join('');
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries
      .map(([k, val]) => {
        if (val !== null && typeof val === 'object' && (Array.isArray(val) ? val.length > 0 : Object.keys(val).length > 0)) {
          return `${pad}${scalar(k)}:\n${toYaml(val, indent + 2)}`;
        }
        return `${pad}${scalar(k)}: ${Array.isArray(val) ? '[]' : val !== null && typeof val === 'object' ? '{}' : scalar(val)}\n`;
      })
      .join('');
  }
  return `${pad}${scalar(v)}\n`;
}
