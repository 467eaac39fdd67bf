// otel-downstream engagement beacon: report how long each page view was visible.
//
// The server cannot see how long a page stays on screen, yet that time is what the customer's
// device spends electricity on. This snippet adds up visible time (tab in the foreground only)
// and sends it once per page view with navigator.sendBeacon when the page is hidden or left.
// Enable the receiving side with WSGIMiddleware/ASGIMiddleware(engagement_beacon=True) or
// OTEL_DOWNSTREAM_ENGAGEMENT_BEACON=true. Include it with:
//   <script src="/static/engagement.js" data-page="/products/{id}" defer></script>
// data-page (optional) is the route template, never the raw URL: keep it free of ids and user data.
// data-endpoint (optional) overrides the beacon path when engagement_path was changed.
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = (script && script.dataset.endpoint) || "/.well-known/downstream/engagement";
  var page = script && script.dataset.page;
  var visibleMs = 0;
  var since = document.visibilityState === "visible" ? performance.now() : null;

  function pause() {
    if (since !== null) {
      visibleMs += performance.now() - since;
      since = null;
    }
  }

  function report() {
    pause();
    var seconds = visibleMs / 1000;
    visibleMs = 0; // each visible stretch is reported once, even if the page comes back
    if (!(seconds > 0) || !navigator.sendBeacon) return;
    var body = { seconds: Math.min(seconds, 86400) };
    if (page) body.page = page;
    // A plain string is sent as text/plain: a "simple" request, no CORS preflight needed.
    navigator.sendBeacon(endpoint, JSON.stringify(body));
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      report();
    } else if (since === null) {
      since = performance.now();
    }
  });
  // pagehide also fires on bfcache navigations, where unload would not.
  window.addEventListener("pagehide", report);
})();
