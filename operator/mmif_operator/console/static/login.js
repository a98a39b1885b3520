"use strict";
(() => {
  const { api, params, showMessage } = Console;
  const next = params.get("next") || "/runs";
  const safeNext = next.startsWith("/") && !next.startsWith("//") ? next : "/runs";

  async function login(token) {
    const r = await api("/api/login", { json: { token } });
    if (!r.ok) { showMessage(r.body.error || `Login failed (${r.status})`); return; }
    location.assign(safeNext);
  }

  // `kubectl mmif console` may hand the token over in the URL fragment (#token=...): it never
  // reaches a server log; it is taken out of the address at once.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    const token = fragment.get("token");
    history.replaceState(null, "", location.pathname + location.search);
    login(token);
  }

  document.getElementById("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    login(e.target.elements.token.value.trim());
  });
})();
