"""The web UI: the dashboard, linking Kitsu, the user's list and its entries, anime pages and
Kitsu's catalogue, scrobbling settings; and the operator's health endpoint.

Every page view shows or changes only the signed-in user's own data; state changes are POST
only. Another user's object is "not found" (404), never "forbidden", so ids reveal nothing.
"""
