"""The thin web adapter for humans (sign-in page, dashboard, operator page) and the REST
declination of the public RPCs; every action is a gRPC call to the node over a real channel."""
