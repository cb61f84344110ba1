// Gatehouse console: the few things plain HTML cannot do. No framework, no markup from strings (the page's
// Trusted Types policy forbids it): every node is built with the DOM and filled with textContent.
"use strict";

(function () {
  var REDACTED = "[REDACTED]";

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    }
    (children || []).forEach(function (c) {
      n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return n;
  }

  // ts shows a time exactly as the server renders it: absolute, UTC, to the second.
  function ts(s) {
    if (!s) { return ""; }
    var d = new Date(s);
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 1971) { return ""; }
    return d.toISOString().slice(0, 19).replace("T", " ") + "Z";
  }

  function humanBytes(n) {
    if (n < 1024) { return n + " B"; }
    var units = "KMGTPE", div = 1024, exp = 0;
    for (var m = Math.floor(n / 1024); m >= 1024; m = Math.floor(m / 1024)) { div *= 1024; exp++; }
    return (n / div).toFixed(1) + " " + units[exp] + "iB";
  }

  // marked appends text to parent with the recorder's redaction markers highlighted.
  function marked(parent, text) {
    var parts = text.split(REDACTED);
    parts.forEach(function (p, i) {
      if (i > 0) { parent.appendChild(el("mark", { "class": "redacted", title: "redacted by the recorder" }, [REDACTED])); }
      if (p) { parent.appendChild(document.createTextNode(p)); }
    });
  }

  function prettyBody(b64) {
    if (!b64) { return ""; }
    var text;
    try {
      var bin = atob(b64), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (e) {
      return "(binary data)";
    }
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function statusClass(code) {
    if (!code) { return "st-none"; }
    if (code < 300) { return "st-ok"; }
    if (code < 400) { return "st-redirect"; }
    if (code < 500) { return "st-client"; }
    return "st-server";
  }

  // Copy buttons next to the ready-to-paste settings.
  function setupCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var src = document.getElementById(btn.getAttribute("data-copy"));
        if (!src || !navigator.clipboard) { btn.textContent = "Select the text to copy"; return; }
        navigator.clipboard.writeText(src.textContent).then(function () {
          btn.textContent = "Copied";
        }, function () {
          btn.textContent = "Select the text to copy";
        });
      });
    });
  }

  // Buttons that ask before a destructive form is sent.
  function setupConfirm() {
    document.querySelectorAll("button[data-confirm]").forEach(function (btn) {
      btn.addEventListener("click", function (ev) {
        if (!window.confirm(btn.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  }

  // The endpoint editor's "Add endpoint": clone the blank row and number its fields.
  function setupRows() {
    document.querySelectorAll("fieldset.endpoints").forEach(function (fs) {
      var add = fs.querySelector("[data-add-row]"), tpl = fs.querySelector("template[data-row-template]");
      var rows = fs.querySelector("[data-rows]");
      if (!add || !tpl || !rows) { return; }
      add.hidden = false;
      add.addEventListener("click", function () {
        var next = rows.querySelectorAll("[data-row]").length;
        var row = tpl.content.firstElementChild.cloneNode(true);
        row.querySelectorAll("[id],[name],[for]").forEach(function (n) {
          ["id", "name", "for"].forEach(function (a) {
            var v = n.getAttribute(a);
            if (v) { n.setAttribute(a, v.split("__i__").join(String(next))); }
          });
        });
        rows.appendChild(row);
        var first = row.querySelector("input");
        if (first) { first.focus(); }
      });
    });
  }

  // Show only the fields of the chosen target credential type.
  function setupCredType() {
    var sel = document.querySelector("select[data-credtype]");
    if (!sel) { return; }
    var form = sel.form;
    function apply() {
      form.querySelectorAll("[data-for]").forEach(function (d) { d.hidden = d.getAttribute("data-for") !== sel.value; });
    }
    sel.addEventListener("change", apply);
    apply();
  }

  function cell(children, cls) {
    var td = el("td", cls ? { "class": cls } : null, children);
    return td;
  }

  // Live connection list: the server sends the current filtered page whenever it changes.
  function setupConnections() {
    var table = document.getElementById("connections");
    if (!table || !window.EventSource) { return; }
    var tbody = table.querySelector("tbody"), state = document.getElementById("live-state");
    var canTerminate = table.getAttribute("data-terminate") === "1";
    var es = new EventSource(table.getAttribute("data-events"));
    es.addEventListener("connections", function (ev) {
      var data = JSON.parse(ev.data), items = data.items || [];
      var rows = items.map(function (c) {
        var actions = [el("a", { href: "/monitor/connections/" + encodeURIComponent(c.id) }, ["Open"])];
        if (canTerminate && c.status === "CONNECTED") {
          actions.push(" ", el("a", { href: "/monitor/connections/" + encodeURIComponent(c.id) + "/terminate", "class": "danger-link" }, ["Terminate"]));
          actions.push(" ", el("a", { href: "/monitor/users/" + encodeURIComponent(c.user.id) + "/terminate?name=" + encodeURIComponent(c.user.name), "class": "danger-link" }, ["All of user's"]));
        }
        return el("tr", { "data-id": c.id }, [
          cell([el("span", { "class": "badge s-" + c.status }, [c.status])]),
          cell([c.user.name || ""]),
          cell([c.target.name || ""]),
          cell([el("code", null, [c.client_address || ""])]),
          cell([String(c.requests)], "num"),
          cell([humanBytes(c.bytes_in) + " / " + humanBytes(c.bytes_out)], "num"),
          cell([el("time", null, [ts(c.connected)])]),
          cell([el("time", null, [ts(c.last_activity)])]),
          cell(actions, "row-actions")
        ]);
      });
      tbody.replaceChildren.apply(tbody, rows);
      if (state) { state.textContent = data.count + " connections (live, updated " + ts(new Date().toISOString()) + ")."; }
    });
    es.addEventListener("ended", function () {
      es.close();
      if (state) { state.textContent = "Live updates stopped; reload the page."; }
    });
  }

  function headerList(h) {
    var dl = el("dl", { "class": "headers" });
    Object.keys(h || {}).sort().forEach(function (k) {
      (h[k] || []).forEach(function (v) {
        dl.appendChild(el("dt", null, [k]));
        var dd = el("dd");
        marked(dd, v);
        dl.appendChild(dd);
      });
    });
    return dl;
  }

  function exchangeItem(x) {
    var summary = el("summary", null, [
      el("span", { "class": "m" }, [x.method]), " ",
      el("span", { "class": "u" }, [x.url]), " ",
      el("span", { "class": "badge " + statusClass(x.status) }, [x.status ? String(x.status) : "—"]), " ",
      el("span", { "class": "d" }, [(x.duration_ms || 0).toFixed(1) + " ms"]), " ",
      el("span", { "class": "dec" }, [x.decision || ""]), " ",
      el("time", null, [ts(x.started)])
    ]);
    var body = el("div", { "class": "exchange" });
    if (x.error) { body.appendChild(el("p", { "class": "bad" }, ["Error: " + x.error])); }
    body.appendChild(el("h3", null, ["Request headers"]));
    body.appendChild(headerList(x.request_headers));
    var rq = prettyBody(x.request_body);
    if (rq) { body.appendChild(el("h3", null, ["Request body"])); var p1 = el("pre"); marked(p1, rq); body.appendChild(p1); }
    body.appendChild(el("h3", null, ["Response headers"]));
    body.appendChild(headerList(x.response_headers));
    var rs = prettyBody(x.response_body);
    if (rs) { body.appendChild(el("h3", null, ["Response body"])); var p2 = el("pre"); marked(p2, rs); body.appendChild(p2); }
    return el("li", { "data-seq": String(x.seq), "class": "new" }, [el("details", null, [summary, body])]);
  }

  // Live trail: exchanges of an open session arrive as they are recorded.
  function setupTrail() {
    var ol = document.getElementById("trail");
    if (!ol || !ol.getAttribute("data-stream") || !window.EventSource) { return; }
    var state = document.getElementById("trail-state");
    var es = new EventSource(ol.getAttribute("data-stream"));
    function add(x) {
      if (ol.querySelector('li[data-seq="' + Number(x.seq) + '"]')) { return; }
      // Keep trail order: the catch-up page and the stream may interleave.
      var next = null;
      ol.querySelectorAll("li[data-seq]").forEach(function (li) {
        if (!next && Number(li.getAttribute("data-seq")) > Number(x.seq)) { next = li; }
      });
      ol.insertBefore(exchangeItem(x), next);
      if (state) { state.textContent = ol.children.length + " exchanges; new ones appear as they happen."; }
    }
    es.addEventListener("exchange", function (ev) { add(JSON.parse(ev.data)); });
    // Once the stream is open, fetch what was recorded between rendering the page and subscribing.
    es.addEventListener("open", function () {
      // Exchanges are numbered from 1 in trail order, so the highest shown is the offset of the first one missing.
      var last = 0;
      ol.querySelectorAll("li[data-seq]").forEach(function (li) { last = Math.max(last, Number(li.getAttribute("data-seq"))); });
      var url = ol.getAttribute("data-catchup") + "?offset=" + last;
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.json() : { items: [] };
      }).then(function (page) {
        (page.items || []).forEach(add);
      }, function () { /* the stream still delivers new exchanges */ });
    });
    es.addEventListener("end", function () {
      es.close();
      if (state) { state.textContent = ol.children.length + " exchanges; the session has closed."; }
      var st = document.getElementById("conn-status");
      if (st) { st.textContent = "CLOSED"; st.className = "badge s-CLOSED"; }
      var t = document.getElementById("terminate");
      if (t) { t.hidden = true; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy();
    setupConfirm();
    setupRows();
    setupCredType();
    setupConnections();
    setupTrail();
  });
})();
