// ddserver's progressive enhancements. Every function of the site works without this file.
"use strict";
(function () {
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.querySelector(button.getAttribute("data-copy"));
        if (!field) { return; }
        var done = function () {
          var label = button.textContent;
          button.textContent = "✓";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
        } else {
          field.select();
          try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
        }
      });
    });
  }

  function labelCheck() {
    var label = document.getElementById("f-label");
    var zone = document.getElementById("f-zone");
    var status = document.getElementById("label-status");
    if (!label || !zone || !status) { return; }
    var timer = null;
    var check = function () {
      if (!label.value.trim()) { status.textContent = ""; return; }
      var url = label.getAttribute("data-check-url") + "?zone=" + encodeURIComponent(zone.value) +
        "&label=" + encodeURIComponent(label.value);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          status.textContent = answer.message;
          status.className = "small " + (answer.ok ? "text-success" : "text-danger");
        })
        .catch(function () { status.textContent = ""; });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(check, 250); };
    label.addEventListener("input", later);
    zone.addEventListener("change", later);
  }

  function addresses() {
    var box = document.getElementById("addresses");
    if (!box) { return; }
    ["ipv4", "ipv6"].forEach(function (family) {
      var url = box.getAttribute("data-" + family + "-url");
      if (!url) { return; }
      fetch(url, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (answer.family !== family) { return; }
          document.getElementById(family).textContent = answer.address;
          document.getElementById(family + "-reverse").textContent = answer.reverse || "";
        })
        .catch(function () { /* this family is not available to the visitor */ });
    });
  }

  // Asks one family-specific "my address" URL; resolves to the address, or "" when the name does not answer
  // (the visitor has no address of that family, or the name is unreachable) within a few seconds.
  function askAddress(url, family) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, 5000) : null;
    var options = { headers: { "Accept": "application/json" }, cache: "no-store" };
    if (controller) { options.signal = controller.signal; }
    return fetch(url, options)
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (answer) { return answer.family === family ? String(answer.address || "") : ""; })
      .catch(function () { return ""; })
      .then(function (address) { if (timer) { clearTimeout(timer); } return address; });
  }

  // "Use my IPv4 and IPv6 addresses" on a host's page: learn both addresses from the updater's IPv4-only and
  // IPv6-only names, then post the page's own address form (CSRF token included) with what was found.
  function bothFamilies() {
    var button = document.getElementById("use-both");
    if (!button || !window.fetch || !window.Promise) { return; }
    var form = button.form;
    var status = document.getElementById("use-both-status");
    button.hidden = false;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      button.disabled = true;
      if (status) { status.textContent = button.getAttribute("data-asking"); }
      Promise.all([
        askAddress(button.getAttribute("data-ipv4-url"), "ipv4"),
        askAddress(button.getAttribute("data-ipv6-url"), "ipv6")
      ]).then(function (found) {
        form.elements.found_ipv4.value = found[0];
        form.elements.found_ipv6.value = found[1];
        var mode = document.createElement("input");
        mode.type = "hidden";
        mode.name = "use_current";
        mode.value = "both";
        form.appendChild(mode);
        form.submit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    labelCheck();
    addresses();
    bothFamilies();
  });
})();
