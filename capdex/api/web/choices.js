// The captioner drop-downs: only models that can run on this server are offered; the others are
// listed below with what each needs first (GET /api/captioners: `unavailable`).

/** Fill `select` with the runnable captioners and `details` with the rest and how to get them. */
export function fillCaptioners(select, details, captioners) {
  const unavailable = captioners?.unavailable || {};
  const names = (captioners?.captioners || []).filter((name) => !(name in unavailable));
  select.replaceChildren();
  for (const name of names) select.append(new Option(name, name, false, name === captioners.default));
  const missing = Object.entries(unavailable);
  details.hidden = missing.length === 0;
  if (!missing.length) return names;
  const summary = document.createElement("summary");
  summary.textContent = `${missing.length} more need installing first`;
  const list = document.createElement("ul");
  for (const [name, need] of missing) {
    const item = document.createElement("li");
    item.append(Object.assign(document.createElement("code"), { textContent: name }), `: ${need}`);
    list.append(item);
  }
  details.replaceChildren(summary, list);
  return names;
}
