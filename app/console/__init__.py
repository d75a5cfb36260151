"""The auditor console: the ledger's answers as server-rendered pages, on the same app as the API.

Signed in with an `auditor` or `admin` API key; every page is scoped to the key's tenant; every number
links to the event it comes from. Templates and assets are served by the app itself (no CDN).
"""
