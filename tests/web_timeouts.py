"""How long the tests' HTTP clients wait for the web adapter: httpx's default of 5 s is shorter
than a call through the adapter and the node takes on a machine whose cores another process keeps
busy (a suite run failed so), and a timeout there is not what any test is about."""

HTTP_TIMEOUT = 60.0
