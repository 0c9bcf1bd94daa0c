/** The page's tiny DOM helpers: an element factory and a lookup by id. */

type Attrs = Record<string, string | boolean | undefined>;

/** An element with its attributes (`true`: present and empty; `false` / undefined: absent) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children);
  return el;
}

export const $ = (id: string) => document.getElementById(id) as HTMLElement;
