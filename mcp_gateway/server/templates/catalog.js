// The catalog's only script: sign-in (key in sessionStorage, sent as a bearer header), the search
// filter, the try-it form and copy buttons. Content is server-rendered HTML; nothing is built here.
"use strict";
(function () {
  const KEY = "mcp-gateway-key";
  const main = document.getElementById("content");
  const authOn = main && main.dataset.auth === "on";

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const key = sessionStorage.getItem(KEY);
    if (key) h["Authorization"] = "Bearer " + key;
    return h;
  }

  async function loadFragment() {
    const response = await fetch(main.dataset.fragment, {headers: headers(), cache: "no-store"});
    main.innerHTML = await response.text();  // server-rendered, autoescaped HTML
    if (response.status === 401) sessionStorage.removeItem(KEY);
    showSignedIn();
    wire();
  }

  function showSignedIn() {
    const signedIn = !!sessionStorage.getItem(KEY);
    const logout = document.getElementById("logout");
    if (!logout) return;
    logout.hidden = !signedIn;
    document.querySelectorAll("#login label, #login input, #login button[type=submit]").forEach(function (el) {
      el.hidden = signedIn;
    });
  }

  function filter(query) {
    const needle = query.trim().toLowerCase();
    let shown = 0;
    document.querySelectorAll(".card").forEach(function (card) {
      const match = !needle || card.dataset.search.indexOf(needle) !== -1;
      card.hidden = !match;
      if (match) shown += 1;
    });
    document.querySelectorAll(".group").forEach(function (group) {
      group.hidden = !group.querySelector(".card:not([hidden])");
    });
    const none = document.getElementById("no-match");
    if (none) none.hidden = shown !== 0;
  }

  function value(control) {
    const kind = control.dataset.kind;
    if (kind === "boolean") return control.checked;
    if (control.value === "") return undefined;
    if (kind === "integer") return parseInt(control.value, 10);
    if (kind === "number") return parseFloat(control.value);
    if (kind === "json") return JSON.parse(control.value);
    return control.value;
  }

  async function tryIt(form) {
    const out = document.getElementById("try-result");
    const answer = document.getElementById("try-answer");
    const args = {};
    try {
      form.querySelectorAll("[data-kind]").forEach(function (control) {
        const v = value(control);
        if (v !== undefined) args[control.name] = v;
      });
    } catch (err) {
      out.hidden = false;
      answer.textContent = "Not valid JSON: " + err.message;
      return;
    }
    answer.textContent = "Calling…";
    out.hidden = false;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch("/v1/tools/" + encodeURIComponent(form.dataset.tool), {
        method: "POST", headers: headers({"Content-Type": "application/json"}), body: JSON.stringify(args)});
      const body = await response.json();
      if (!response.ok) {
        answer.textContent = (body.title || "Error") + ": " + (body.detail || response.status);
        (body.errors || []).forEach(function (e) { answer.textContent += "\n  " + e.path + ": " + e.message; });
        document.getElementById("try-usage").textContent = "";
        document.getElementById("try-cost").textContent = "";
        document.getElementById("try-route").textContent = "";
        return;
      }
      answer.textContent = body.structured !== undefined ? JSON.stringify(body.structured, null, 2) : body.text;
      const u = body.usage || {};
      document.getElementById("try-usage").textContent =
        (u.input_tokens || 0) + " input + " + (u.output_tokens || 0) + " output tokens";
      document.getElementById("try-cost").textContent =
        body.cost_usd === null || body.cost_usd === undefined ? "unknown (no price)" : "$" + body.cost_usd;
      document.getElementById("try-route").textContent =
        (body.route || "") + " → " + (body.target || "") + " in " + Math.round(body.duration_ms || 0) + " ms";
    } catch (err) {
      answer.textContent = "The call failed: " + err.message;
    } finally {
      button.disabled = false;
    }
  }

  function wire() {
    const search = document.getElementById("search");
    if (search) {
      search.addEventListener("input", function () { filter(search.value); });
      search.form.addEventListener("submit", function (event) { event.preventDefault(); filter(search.value); });
      filter(search.value);
    }
    document.querySelectorAll("a.tag[data-tag]").forEach(function (a) {
      a.addEventListener("click", function (event) {
        if (!search) return;
        event.preventDefault();
        search.value = a.dataset.tag;
        filter(search.value);
      });
    });
    document.querySelectorAll("form.try").forEach(function (form) {
      form.addEventListener("submit", function (event) { event.preventDefault(); tryIt(form); });
    });
    document.querySelectorAll("button.copy").forEach(function (button) {
      button.addEventListener("click", function () {
        const text = document.getElementById(button.dataset.copy).textContent;
        if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const login = document.getElementById("login");
    if (login) {
      login.addEventListener("submit", function (event) {
        event.preventDefault();
        const input = document.getElementById("api-key");
        if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
        input.value = "";
        loadFragment();
      });
      document.getElementById("logout").addEventListener("click", function () {
        sessionStorage.removeItem(KEY);
        location.reload();
      });
    }
    if (authOn && sessionStorage.getItem(KEY)) loadFragment();
    else wire();
    showSignedIn();
  });
})();
