"""The study workflow in the workstation window: log-in, worklist, signing, adjudication.

Thin Qt adapters over :class:`readerapp.study.StudyService`; every rule (roles, blinding,
versions, signatures) is applied there, not here.
"""
