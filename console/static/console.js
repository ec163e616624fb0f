// Progressive enhancement only: every page works without it.
document.addEventListener("keydown", (e) => {
  const q = document.getElementById("q");
  if (e.key === "/" && q && document.activeElement !== q && !/INPUT|TEXTAREA/.test(document.activeElement.tagName)) {
    e.preventDefault();
    q.focus();
  }
});

document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    e.preventDefault();
    return;
  }
  if (form.dataset.busy) {  // a replay waits for its entities: say so meanwhile
    const button = form.querySelector("button");
    if (button) { button.disabled = true; button.textContent = form.dataset.busy; }
  }
});

// An entity page follows its transitions live (server-sent events from the change stream).
window.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  const table = document.getElementById("timeline");
  if (!live || !table || !window.EventSource) return;
  const source = new EventSource(live.dataset.url);
  source.onerror = () => live.classList.add("off");
  source.onopen = () => live.classList.remove("off");
  source.onmessage = (message) => {
    const change = JSON.parse(message.data);
    const row = table.insertRow(-1);
    row.className = "transition";
    for (const text of [change.at, "transition", `${change.from || "∅"} → ${change.to}`,
                        `${change.decision}; modifiedOn ${change.modifiedOn || "—"} (live)`]) {
      row.insertCell(-1).textContent = text;
    }
    const status = document.getElementById("status");
    if (status) status.textContent = change.to;
    // the record itself: data and modifiedOn follow the status
    fetch(live.dataset.state, {headers: {"Accept": "application/json"}})
      .then((answer) => answer.ok ? answer.json() : null)
      .then((now) => {
        if (!now) return;
        for (const [id, value] of [["status", now.status], ["modified", now.modifiedOn],
                                   ["updated", now.updatedAt], ["data", now.data]]) {
          const shown = document.getElementById(id);
          if (shown) shown.textContent = value;
        }
      });
  };
});
