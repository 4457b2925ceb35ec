"""The web console's server side: sessions and the data behind its pages."""
