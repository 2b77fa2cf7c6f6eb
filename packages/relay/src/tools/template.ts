/**
 * `{{path.to.value}}` placeholders, looked up in a data object (missing → empty string). Logic-less
 * on purpose: templates come from config files and must not run code. Top-level keys may contain
 * dots themselves (metadata is stored flat: `customer.first_name`); the longest such key wins.
 */
export function renderTemplate(
  template: string,
  data: Record<string, unknown>,
  encode: (value: string) => string = (v) => v,
): string {
  return template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_match, path: string) =>
    encode(stringify(lookup(data, path))),
  );
}

export function lookup(data: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(data, path)) return data[path];
  const parts = path.split('.');
  for (let split = parts.length - 1; split > 0; split--) {
    const head = parts.slice(0, split).join('.');
    if (Object.hasOwn(data, head)) {
      const next = data[head];
      return next !== null && typeof next === 'object'
        ? lookup(next as Record<string, unknown>, parts.slice(split).join('.'))
        : undefined;
    }
  }
  return undefined;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
