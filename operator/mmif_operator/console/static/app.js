// The console's shared code: API calls (the session cookie carries the person's token), the
// header, the namespace picker, progress bars and the live stream. No framework, no build step.
"use strict";

const Console = (() => {
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const params = new URLSearchParams(location.search);

  function toLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.json !== undefined) {
      opts.method = opts.method || "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    const resp = await fetch(path, opts);
    let body = {};
    try { body = await resp.json(); } catch (e) { body = {}; }
    if (resp.status === 401 && !path.startsWith("/api/login")) { toLogin(); throw new Error("not logged in"); }
    return { ok: resp.ok, status: resp.status, body };
  }

  function namespace() {
    const ns = params.get("ns") || sessionStorage.getItem("mmif-console-ns");
    if (ns) sessionStorage.setItem("mmif-console-ns", ns);
    return ns;
  }

  async function header(active) {
    const ns = namespace();
    const nav = document.getElementById("nav");
    const q = ns ? "?ns=" + encodeURIComponent(ns) : "";
    nav.replaceChildren(
      h("a", { href: "/runs" + q, class: active === "runs" ? "active" : "" }, "Runs"),
      h("a", { href: "/pipelines" + q, class: active === "pipelines" ? "active" : "" }, "Pipelines"),
      h("form", { class: "ns", onsubmit: (e) => {
        e.preventDefault();
        const v = e.target.elements.ns.value.trim();
        if (v) location.assign((active === "pipelines" ? "/pipelines" : "/runs") + "?ns=" + encodeURIComponent(v));
      } },
        h("label", { for: "ns-input" }, "Namespace "),
        h("input", { id: "ns-input", name: "ns", value: ns || "", list: "ns-list", size: 18, autocomplete: "off" }),
        h("datalist", { id: "ns-list" }),
        h("button", { type: "submit" }, "Go")),
      h("span", { id: "who", class: "who" }),
    );
    const who = await api("/api/whoami");
    document.getElementById("who").replaceChildren(
      "Signed in as ", h("strong", { id: "username" }, who.body.user || "?"), " ",
      h("button", { type: "button", onclick: async () => { await api("/api/logout", { json: {} }); location.assign("/login"); } }, "Log out"));
    api("/api/namespaces").then((r) => {
      const list = document.getElementById("ns-list");
      for (const n of r.body.namespaces || []) list.append(h("option", { value: n }));
    });
    return ns;
  }

  function showMessage(text, kind) {
    const el = document.getElementById("message");
    el.className = "message " + (kind || "error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function bar(label, b, extra) {
    const pct = b.percent;
    const parts = [`${b.done}/${b.total}`];
    if (b.failed) parts.push(`${b.failed} failed`);
    if (b.running) parts.push(`${b.running} running`);
    if (b.cancelled) parts.push(`${b.cancelled} cancelled`);
    // The width is set through the CSSOM: the Content-Security-Policy refuses style attributes.
    const fill = h("div", { class: "fill" });
    fill.style.width = `${pct}%`;
    return h("div", { class: "bar-row" + (extra ? " " + extra : "") },
      h("span", { class: "bar-label" }, label),
      h("div", { class: "bar" + (b.failed ? " has-failures" : ""), role: "progressbar", "aria-label": label,
                 "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-valuetext": `${pct}%` },
        fill),
      h("span", { class: "bar-pct" }, `${pct}%`),
      h("span", { class: "bar-counts" }, parts.join(", ")));
  }

  function phaseBadge(phase) {
    return h("span", { class: "phase phase-" + (phase || "Pending") }, phase || "Pending");
  }

  // An EventSource that comes back: the browser's own retry covers a dropped connection; when the
  // browser gives up (the console restarted, a port-forward re-opened), a new one is made.
  function live(url, handlers) {
    const state = document.getElementById("live");
    let source = null, stopped = false, delay = 1000;
    const set = (text, cls) => { if (state) { state.textContent = text; state.className = "live " + cls; } };
    function open() {
      source = new EventSource(url);
      source.addEventListener("open", () => { delay = 1000; set("live", "on"); });
      for (const [name, fn] of Object.entries(handlers)) {
        source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
      }
      source.addEventListener("denied", () => { stopped = true; source.close(); set("not allowed", "off"); });
      source.addEventListener("error", () => {
        if (stopped) return;
        set("reconnecting…", "off");
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up. Still logged in? (A 401 goes to the login page.) Then retry.
          setTimeout(() => {
            if (stopped) return;
            api("/api/whoami").then(() => { if (!stopped) open(); }, (e) => {
              if (e instanceof TypeError && !stopped) open();  // the console is unreachable: try again
            });
          }, delay);
          delay = Math.min(delay * 2, 10000);
        }
      });
    }
    open();
    return { close: () => { stopped = true; source && source.close(); } };
  }

  function when(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    return isNaN(d) ? ts : d.toLocaleString();
  }

  return { h, api, params, namespace, header, showMessage, bar, phaseBadge, live, when, toLogin };
})();
