// The extension's service worker. MV3 may stop it at any moment, so it holds no state and never
// runs the engine (that lives in the offscreen document the panel creates: offscreen.js). It only
// opens the side panel when the toolbar button is clicked, and tells an open panel which tab the
// button was clicked on.
//
// The click is handled here (chrome.action.onClicked) rather than by the panel behaviour
// `openPanelOnActionClick`: only an onClicked invocation grants `activeTab` on the page, which
// the panel needs to inject its content script there. sidePanel.open must be called at once,
// inside the click's user gesture (no await before it).
chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: false }).catch(() => {});
chrome.action.onClicked.addListener((tab) => {
  chrome.sidePanel.open({ windowId: tab.windowId }).catch((e) => console.error(e));
  // An open panel looks at this tab now (a panel that is just opening ignores it: it looks anyway).
  chrome.runtime.sendMessage({ type: 'invoked', tabId: tab.id }).catch(() => {});
});
