"""Bastion scheduler: the domain layer between the web app and the solver.

It will hold the domain models (districts, sites, posts, volunteers, their
availability), the services that turn them into ``roster-problem/1``
documents and store the ``roster-solution/1`` results, and the background jobs
that run the solver. None of that exists yet; it arrives with the next issue.

Dependencies point one way: web → scheduler → solver. Nothing here may import
``web``, and ``solver`` must never import ``scheduler``.
"""
