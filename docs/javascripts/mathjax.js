// MathJax typesets the \( ... \) and \[ ... \] spans of the Markdown pages (pymdownx.arithmatex)
// and the $ ... $ and $$ ... $$ of the lessons' notebook cells; code blocks are left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true
  }
};

document$.subscribe(() => {
  if (MathJax.typesetPromise) {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  }
});
