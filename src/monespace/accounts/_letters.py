"""The texts sent to people: invitation, new code, majority, suspension. In French, as sent
in France.

The invitation carries what CSP R1111-28 requires: what the space is and how it relates to
the DMP, the right to object and how to exercise it, how to close the space; and what
R1111-40 adds for the DMP: how it is created, closed and destroyed, its access rules, and
the médecin traitant's rights. A date a person is given is the last whole day, Paris time,
on which the step is accepted. None of these
texts carries health data: they name no document, professional or care.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

__all__ = [
    "Letter",
    "code_letter",
    "code_sms",
    "invitation_letter",
    "majority_letter",
    "suspension_letter",
]

_PARIS = ZoneInfo("Europe/Paris")


@attrs.frozen
class Letter:
    """A subject and a body, ready for any channel."""

    subject: str
    body: str


@functools.lru_cache(maxsize=256)
def _day(moment: datetime) -> str:
    # Cached: a batch of letters prints the same few deadlines hundreds of times.
    return moment.astimezone(_PARIS).strftime("%d/%m/%Y")


def _last_day(deadline: datetime) -> str:
    """The last day, in Paris, before *deadline*: a deadline at midnight prints the day it
    ends, which is whole ("jusqu'au 02/05/2026" means until 23:59:59 that day)."""
    return _day(deadline - timedelta(microseconds=1))


def invitation_letter(
    *, code: str, opposition_deadline: datetime, code_expires: datetime, for_representative: bool
) -> Letter:
    """The information sent before a space opens (R1111-28 1° to 3°)."""
    whose = (
        "l'espace numérique de santé de la personne que vous représentez"
        if for_representative
        else "votre espace numérique de santé"
    )
    holder = "son" if for_representative else "votre"
    body = f"""Bonjour,

L'Assurance Maladie met à votre disposition {whose}, Mon espace santé.

Ce que c'est
  Un espace personnel et sécurisé pour stocker et partager les documents et informations
  utiles à la santé : dossier médical (qui intègre le Dossier Médical Partagé, DMP, s'il en
  existe un), messagerie sécurisée avec les professionnels de santé, agenda, catalogue de
  services référencés. Vous seul décidez des professionnels qui y accèdent.

Activer {holder} espace
  Avec le code provisoire ci-dessous, le numéro de sécurité sociale, le numéro de série de la
  carte Vitale et la date de naissance.
  Code provisoire : {code}   (valable jusqu'au {_last_day(code_expires)}, une seule fois)

Vous opposer à sa création
  Vous pouvez vous y opposer jusqu'au {_last_day(opposition_deadline)} inclus, en ligne avec ce même
  code, ou par téléphone au 3422. Une preuve d'opposition vous est remise. Sans opposition
  à cette date, l'espace est ouvert automatiquement.

Le fermer
  Vous pourrez fermer l'espace à tout moment. Ses données sont alors archivées dix ans puis
  supprimées, ou supprimées plus tôt si vous le demandez.

Les règles du DMP
  Le DMP est créé à l'ouverture de l'espace (un DMP ouvert avant y est intégré) ; il est
  fermé avec lui, archivé dix ans puis détruit. Les professionnels de votre équipe de soins
  y accèdent sauf si vous vous y opposez ; les autres, avec votre autorisation. Chacun ne
  voit que les documents que sa profession peut consulter. Vous pouvez masquer un document,
  bloquer un professionnel, vous opposer à l'accès en urgence ; toutes les actions laissent
  des traces que vous consultez à tout moment.

Les droits du médecin traitant
  Votre médecin traitant accède à tous vos documents, y compris ceux que vous avez masqués,
  et il est informé d'un accès en urgence à votre dossier. Vous pouvez accorder les mêmes
  droits à d'autres professionnels.

Ce message ne contient aucune donnée de santé.
L'Assurance Maladie
"""
    return Letter("Votre service Mon espace santé", body)


def code_letter(*, code: str, code_expires: datetime) -> Letter:
    """A new provisional code, on request (the previous one no longer works)."""
    body = f"""Bonjour,

Voici votre nouveau code provisoire Mon espace santé : {code}
Il est valable jusqu'au {_last_day(code_expires)}, une seule fois. Le code précédent ne
fonctionne plus.

Si vous n'avez pas demandé ce code, ignorez ce message.
"""
    return Letter("Votre code provisoire Mon espace santé", body)


def code_sms(*, code: str, code_expires: datetime) -> Letter:
    """A new provisional code by SMS: short, the code and its last day only."""
    body = (
        f"Mon espace santé : votre code provisoire est {code}, valable une fois jusqu'au "
        f"{_last_day(code_expires)}. Si vous ne l'avez pas demandé, ignorez ce message."
    )
    return Letter("Code provisoire Mon espace santé", body)


def majority_letter(*, code: str | None, code_expires: datetime | None) -> Letter:
    """At majority: the young adult now manages their own space. A code comes with it when
    the space was never activated (it opened by itself); an activated space needs none."""
    if code is not None and code_expires is not None:
        how = (
            f"Pour l'activer, utilisez ce code provisoire : {code}\n"
            f"Il est valable jusqu'au {_day(code_expires)}, une seule fois."
        )
    else:
        how = (
            "Connectez-vous avec vos propres identifiants. Vous pouvez demander un code\n"
            "provisoire en ligne avec votre carte Vitale."
        )
    body = f"""Bonjour,

Vous êtes majeur : vous gérez désormais seul votre espace Mon espace santé. Vos
représentants légaux n'y ont plus accès.

{how}

Ce message ne contient aucune donnée de santé.
"""
    return Letter("Vous gérez désormais votre espace Mon espace santé", body)


def suspension_letter(*, objection_deadline: datetime) -> Letter:
    """The notice of a suspension by the operator (R1111-36): the six weeks to object run
    from its sending."""
    body = f"""Bonjour,

L'Assurance Maladie a suspendu l'accès à votre espace Mon espace santé, à la suite d'un
dysfonctionnement grave ou d'une utilisation frauduleuse qu'elle n'a pas pu corriger.

Vous pouvez vous opposer à cette suspension jusqu'au {_day(objection_deadline)}, en ligne ou
par téléphone au 3422 : l'accès à votre espace est alors rétabli. Sans opposition de votre
part à cette date, l'espace est fermé ; ses données sont archivées dix ans puis supprimées.

Ce message ne contient aucune donnée de santé.
L'Assurance Maladie
"""
    return Letter("Votre espace Mon espace santé est suspendu", body)
