"""The dashboard: server-rendered pages at `/` of the controller's listener (Jinja2
templates, a little vanilla JavaScript under static/, nothing fetched from elsewhere).

A browser signs in with a token (`cellops token create`): the server checks it and keeps
it in an HttpOnly, SameSite=Strict cookie that the API reads too. The pages render the
same read models as the API (`cellops.query`); the live parts follow the API's event
stream; writes go to the API's own endpoints, which enforce the operator role.
"""
