// Swagger UI, served from /static so /docs works offline and under a strict CSP.
// The site's prefix (ROOT_PATH behind a proxy) is on <html data-root>.
window.addEventListener("DOMContentLoaded", () => {
  const root = document.documentElement.dataset.root || "";
  window.ui = SwaggerUIBundle({
    url: root + "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    oauth2RedirectUrl: window.location.origin + root + "/static/vendor/swagger-ui/oauth2-redirect.html",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
