"""The application shell: the web app factory and its lifespan, the route table, the request-context
middleware, the sidebar, and the health and icon routes every deployment answers.

Layers point down: the base (config, db, migrations, ...) below the UI kit (optria.web, timeseries,
connectors), the kit below the areas, the areas below this shell and the command line
(tests/unit/test_layers.py holds the rule). Only the shell imports the areas' routes.
"""
