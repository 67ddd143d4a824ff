// Starts GraphiQL on the page raven-registry serves at GET /graphql (src/graphql/graphiql.rs).
// It is a file rather than an inline script so that the page's Content-Security-Policy can refuse
// every inline script. React, ReactDOM and GraphiQL are the globals of the UMD builds loaded before it.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var url = new URL(root.getAttribute('data-endpoint'), window.location.origin).toString();
  var fetcher = GraphiQL.createFetcher({
    url: url,
    fetch: function (input, init) {
      return fetch(input, Object.assign({}, init, { credentials: 'same-origin' }));
    },
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true })
  );
})();
