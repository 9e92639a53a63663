"""HTTP clients and transports: the wire transport, the aiohttp one, and the client over them."""
