(function () {
  // Printed, a plot takes the page's width, then its screen width back.
  function each(f) { if (window.Plotly) document.querySelectorAll('.plotly-graph-div').forEach(f); }
  window.addEventListener('beforeprint', function () { each(function (g) { Plotly.relayout(g, {width: 690}); }); });
  window.addEventListener('afterprint', function () {
    each(function (g) { Plotly.relayout(g, {width: null, autosize: true}).then(function () { Plotly.Plots.resize(g); }); });
  });
})();
