"""Read models of what the controller keeps, shared by the API and the CLI's `-o json`.

Pure functions over the store interface (`ReadStore`) and, where health is shown, a
function that observes one cell: JSON-able dicts, times as ISO-8601 UTC strings. They
import no web framework and no CLI library, so both edges can use them.
"""
