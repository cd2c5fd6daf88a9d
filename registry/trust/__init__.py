"""The trust directory (organisms, sites, their keys), revocations, spent single-use keys,
and the portal's declarants with their sign-in."""
