"use strict";
(async () => {
  const { h, api, params, header, showMessage, bar, phaseBadge, live, when } = Console;
  const ns = await header("runs");
  const name = params.get("name");
  if (!ns || !name) { showMessage("No run named in the address (/run?ns=NAMESPACE&name=RUN)."); return; }
  document.title = `${name} · mmif console`;
  document.getElementById("run-name").textContent = name;
  const base = `/api/namespaces/${encodeURIComponent(ns)}/runs/${encodeURIComponent(name)}`;
  const $ = (id) => document.getElementById(id);

  function reviewMessage(text, kind) {
    const el = $("review-message");
    el.className = "message " + (kind || "error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function renderReview(r) {
    const rv = r.review;
    $("review").hidden = !rv.required;
    if (!rv.required) return;
    const state = $("review-state");
    if (rv.decision) {
      const verb = rv.decision === "Pass" ? "Passed" : "Failed";
      state.replaceChildren(h("p", { id: "review-decision" },
        h("strong", {}, verb), " by ", h("strong", { class: "reviewer" }, rv.reviewer || "?"),
        rv.decidedAt ? ` at ${when(rv.decidedAt)}` : "", rv.comment ? `: “${rv.comment}”` : ""));
      $("review-form").hidden = true;
    } else if (r.phase === "AwaitingReview") {
      state.replaceChildren(h("p", {}, "This run awaits your review",
        rv.deadline ? ` (until ${when(rv.deadline)}, then it fails with ReviewTimeout)` : "", "."));
      $("review-form").hidden = false;
    } else {
      state.replaceChildren(h("p", { class: "muted" },
        ["Succeeded", "Failed", "Cancelled"].includes(r.phase) ? "Ended without a review decision."
          : "The run awaits a review once its items are done and its manifest is written."));
      $("review-form").hidden = true;
    }
  }

  function render(r) {
    $("run").hidden = false;
    $("run-phase").replaceChildren(phaseBadge(r.phase));
    const bits = [`Pipeline ${r.pipeline}`];
    if (r.requester) bits.push(`requested by ${r.requester}`);
    if (r.startTime) bits.push(`started ${when(r.startTime)}`);
    if (r.completionTime) bits.push(`ended ${when(r.completionTime)}`);
    if (r.outputPath) bits.push(`outputs in ${r.outputPath}`);
    $("summary").textContent = bits.join(" · ");
    const c = r.succeeded || {};
    $("condition").replaceChildren(c.reason ? h("p", { id: "condition-text" }, h("strong", {}, c.reason), c.message ? `: ${c.message}` : "") : "");
    $("bars").replaceChildren(bar("overall", r.overall, "overall"), ...r.steps.map((s) => bar(s.name, s)));
    renderReview(r);
    $("items-note").textContent = r.itemsNote || "";
    $("items-note").hidden = !r.itemsNote;
    $("items").querySelector("tbody").replaceChildren(...r.items.map((it) => h("tr", { "data-index": it.index },
      h("td", {}, it.index), h("td", {}, it.item),
      h("td", { class: "state-" + it.state }, it.state), h("td", {}, it.step || ""),
      h("td", {}, it.reason || ""), h("td", {}, it.message || ""),
      h("td", {}, h("button", { type: "button", class: "mmif", onclick: () => openMmif(it.index) }, "MMIF"),
        " ", h("button", { type: "button", class: "logs", onclick: () => openLogs(it.index) }, "Logs")))));
    $("conditions").querySelector("tbody").replaceChildren(...r.conditions.map((k) => h("tr", {},
      h("td", {}, k.type), h("td", {}, k.status), h("td", {}, k.reason || ""), h("td", {}, k.message || ""),
      h("td", { class: "muted" }, when(k.lastTransitionTime)))));
  }

  // The MMIF viewer: the item's MMIF read by a reader pod made with the person's token
  // (console/viewer.py). Timeline bars are placed through the CSSOM: the CSP refuses style attributes.
  const kv = (o) => Object.entries(o || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ");

  function timelineEl(t) {
    const secs = (x) => `${Number(x).toFixed(2).replace(/\.?0+$/, "")} s`;
    const lanes = t.lanes.map((lane) => {
      const track = h("div", { class: "tl-track" });
      for (const b of lane.bars) {
        const el = h("div", { class: "tl-frame", "data-id": b.id, title: `${b.id} ${b.label || ""} ${secs(b.start)}–${secs(b.end)}` });
        el.style.left = `${b.left}%`;
        el.style.width = `${b.width}%`;
        track.append(el);
      }
      return h("div", { class: "tl-lane", "data-view": lane.view },
        h("div", { class: "tl-label" }, `${lane.view} ${lane.app || ""}`), track);
    });
    return h("div", { id: "timeline" },
      h("p", { class: "muted" }, `TimeFrames over ${secs(t.extent)}`,
        t.durationKnown ? " (the media's duration)" : " (the media's duration is not in the MMIF: to the last TimeFrame's end)",
        t.truncated ? "; only the first ones are drawn" : "",
        t.undrawn.length ? `; ${t.undrawn.length} not drawn (no time unit)` : ""),
      ...lanes,
      h("div", { class: "tl-lane tl-axis" }, h("div", {}), h("div", { class: "tl-ticks" },
        h("span", {}, "0 s"), h("span", {}, secs(t.extent / 2)), h("span", {}, secs(t.extent)))));
  }

  function renderViewer(v) {
    const parts = [h("h2", {}, `Item ${v.index} (${v.name}): ${v.state || "not in the manifest yet"}`)];
    if (v.failedStep) parts.push(h("p", { class: "state-Failed" }, `failed at step ${v.failedStep}: ${v.reason}: ${v.message || ""}`));
    if (v.path) parts.push(h("p", {}, `${v.runDir}/${v.path} `, h("a", { id: "mmif-download", href: v.download, download: "" }, "Download the MMIF")));
    else parts.push(h("p", { class: "muted" }, "This item has no MMIF yet."));
    if (v.summaryError) parts.push(h("p", { class: "message error" }, `Cannot read the MMIF: ${v.summaryError}`));
    if (v.documents.length) {
      parts.push(h("h3", {}, "Documents"), h("table", { id: "mmif-documents" },
        h("thead", {}, h("tr", {}, ["Id", "Type", "MIME", "Location", "Duration"].map((c) => h("th", {}, c)))),
        h("tbody", {}, v.documents.map((d) => h("tr", {}, h("td", {}, d.id), h("td", {}, d.type), h("td", {}, d.mime || ""),
          h("td", {}, d.location || ""), h("td", {}, d.duration ? `${d.duration.value} ${d.duration.unit || ""}` : ""))))));
    }
    if (v.views.length) {
      parts.push(h("h3", {}, "Views"), h("table", { id: "mmif-views" },
        h("thead", {}, h("tr", {}, ["View", "App", "Version", "Parameters", "Annotations", "Error"].map((c) => h("th", {}, c)))),
        h("tbody", {}, v.views.map((w) => h("tr", { "data-view": w.id },
          h("td", {}, w.id), h("td", { class: "app" }, w.app || ""), h("td", {}, w.version || ""),
          h("td", {}, kv(w.parameters)),
          h("td", { class: "annotations" }, Object.entries(w.annotations).map(([k, n]) => h("span", { class: "count", "data-type": k }, `${k} ${n}`))),
          h("td", {}, (w.error && w.error.message) || (w.warnings.length ? `warnings: ${w.warnings.join("; ")}` : "")))))));
      parts.push(h("p", { id: "mmif-totals" }, "Annotations: ",
        Object.entries(v.annotationTotals).map(([k, n]) => h("span", { class: "count", "data-type": k }, `${k} ${n}`))));
    }
    if (v.timeline && (v.timeline.lanes.length || v.timeline.undrawn.length)) parts.push(h("h3", {}, "Timeline"), timelineEl(v.timeline));
    return parts;
  }

  async function openMmif(index) {
    const viewer = $("mmif-viewer");
    viewer.hidden = false;
    viewer.replaceChildren(h("h2", {}, `Item ${index}: MMIF`), h("p", { class: "muted", id: "mmif-loading" }, "Reading the item's MMIF (a reader pod, with your identity)…"));
    const res = await api(`${base}/items/${index}/mmif`);
    if (!res.ok) {
      viewer.replaceChildren(h("h2", {}, `Item ${index}: MMIF`), h("p", { class: "message error", id: "mmif-error", role: "alert" }, res.body.error || `Error ${res.status}`));
      return;
    }
    viewer.replaceChildren(...renderViewer(res.body));
    viewer.scrollIntoView({ block: "start" });
  }

  // An item's logs (console/logs.py): what `kubectl mmif logs` prints, read with the person's token.
  async function openLogs(index) {
    const panel = $("logs-viewer");
    panel.hidden = false;
    panel.replaceChildren(h("h2", {}, `Item ${index}: logs`), h("p", { class: "muted", id: "logs-loading" }, "Reading the item's logs (with your identity)…"));
    panel.scrollIntoView({ block: "start" });
    const res = await api(`${base}/items/${index}/logs`);
    if (!res.ok) {
      panel.replaceChildren(h("h2", {}, `Item ${index}: logs`), h("p", { class: "message error", id: "logs-error", role: "alert" }, res.body.error || `Error ${res.status}`));
      return;
    }
    panel.replaceChildren(h("h2", {}, `Item ${index}: logs`), ...res.body.sections.map((s) => h("section", { class: "log log-" + s.source },
      h("h3", {}, s.title), s.text ? h("pre", {}, s.text) : "")));
  }

  $("review-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const decision = e.submitter && e.submitter.value;
    const comment = $("review-comment").value;
    for (const b of e.target.querySelectorAll("button")) b.disabled = true;
    reviewMessage("Sending…", "info");
    const res = await api(`${base}/review`, { json: { decision, comment } });
    for (const b of e.target.querySelectorAll("button")) b.disabled = false;
    if (!res.ok) { reviewMessage(res.body.error || `Refused (${res.status})`); return; }
    reviewMessage(decision === "Pass" ? "Passed: the run publishes its outputs." : "Failed: the run ends Failed.", "ok");
    render(res.body);
  });

  const first = await api(base);
  if (!first.ok) { showMessage(first.body.error || `Error ${first.status}`); return; }
  render(first.body);

  live(`/api/namespaces/${encodeURIComponent(ns)}/stream?run=${encodeURIComponent(name)}`, {
    snapshot: (d) => { if (d.run) render(d.run); else showMessage(`PipelineRun ${name} no longer exists.`); },
    run: render,
    deleted: () => showMessage(`PipelineRun ${name} was deleted.`),
    denied: (d) => { $("run").hidden = true; showMessage(d.message); },
  });
})();
