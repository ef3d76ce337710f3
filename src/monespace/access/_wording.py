"""The access history in plain French: one wording per audited action.

Every action the audit trail records (the :class:`~monespace.policy.Action` values and the
events services record under their own name, such as ``notification.send``) has a
:class:`Wording` here; ``tests/test_wording.py`` enumerates them from the code and fails
when one is missing, so a new action cannot reach the history as a developer code.

A wording holds the past participle phrase and the infinitive phrase of one verb, and how the
verb is conjugated, so the same action reads right whoever did it:

* ``Dr Martin (Médecin) a consulté un document`` and ``Vous avez consulté un document``;
* ``Dr Martin (Médecin) s'est déclaré dans votre équipe de soins`` and ``Vous vous êtes
  connecté`` (pronominal verbs);
* ``Mon espace santé vous a envoyé une notification`` (the holder is the object);
* ``Dr Martin (Médecin) a tenté de consulter un document : accès refusé`` (a denial).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

import attrs

__all__ = [
    "HOLDER_VIEWS",
    "WORDINGS",
    "Conjugation",
    "Wording",
    "sentence",
    "third_person",
    "wording_of",
]


class Conjugation(StrEnum):
    """How the verb of a wording is conjugated in the compound past (passé composé)."""

    AVOIR = "avoir"
    """With *avoir*: "a consulté", "avez consulté"."""
    PRONOMINAL = "pronominal"
    """A pronominal verb, with *être*: "s'est connecté", "vous êtes connecté"."""
    TO_HOLDER = "to_holder"
    """With *avoir*, the holder as indirect object: "vous a envoyé"."""


@attrs.frozen
class Wording:
    """How one audited action reads in the history.

    :param participle: the past participle and its complement ("consulté un document").
    :param infinitive: the infinitive and its complement ("consulter un document"), for
        attempts that were refused or failed.
    :param conjugation: how the verb is conjugated.
    """

    participle: str
    infinitive: str
    conjugation: Conjugation = Conjugation.AVOIR


def _w(participle: str, infinitive: str, conjugation: Conjugation = Conjugation.AVOIR) -> Wording:
    return Wording(participle, infinitive, conjugation)


_P = Conjugation.PRONOMINAL
_H = Conjugation.TO_HOLDER

#: The wording of every audited action, by action name.
WORDINGS: Final[Mapping[str, Wording]] = types.MappingProxyType(
    {
        # identity and the space's lifecycle
        "patient.register": _w("enregistré votre identité", "enregistrer votre identité"),
        "patient.read": _w(
            "consulté vos données administratives", "consulter vos données administratives"
        ),
        "patient.lookup": _w(
            "recherché votre dossier à partir de votre carte Vitale",
            "rechercher votre dossier à partir de votre carte Vitale",
        ),
        "patient.shred": _w(
            "effacé définitivement les données de l'espace",
            "effacer définitivement les données de l'espace",
        ),
        "account.invite": _w(
            "envoyé l'information et un code provisoire",
            "vous envoyer l'information et un code provisoire",
            _H,
        ),
        "account.create": _w("ouvert l'espace", "ouvrir l'espace"),
        "account.activate": _w("activé l'espace", "activer l'espace"),
        "account.login": _w("connecté", "se connecter", _P),
        "account.oppose": _w(
            "opposé à la création de l'espace", "s'opposer à la création de l'espace", _P
        ),
        "account.close": _w("fermé l'espace", "fermer l'espace"),
        "account.delete": _w(
            "demandé la suppression de l'espace", "demander la suppression de l'espace"
        ),
        "account.reopen": _w("rouvert l'espace", "rouvrir l'espace"),
        "account.suspend": _w("suspendu l'espace", "suspendre l'espace"),
        "account.object": _w(
            "demandé la fermeture de l'espace suspendu",
            "demander la fermeture de l'espace suspendu",
        ),
        "account.purge": _w(
            "programmé l'effacement des données de l'espace",
            "programmer l'effacement des données de l'espace",
        ),
        # the deadlines move a space from one state to the next (account.<state>)
        "account.registered": _w("enregistré l'espace", "enregistrer l'espace"),
        "account.invited": _w(
            "envoyé l'information sur l'espace", "vous envoyer l'information sur l'espace", _H
        ),
        "account.created": _w(
            "ouvert l'espace à la fin du délai d'opposition",
            "ouvrir l'espace à la fin du délai d'opposition",
        ),
        "account.active": _w("activé l'espace", "activer l'espace"),
        "account.opposed": _w(
            "enregistré votre opposition à l'espace", "enregistrer votre opposition à l'espace"
        ),
        "account.suspended": _w("suspendu l'espace", "suspendre l'espace"),
        "account.closed": _w("fermé l'espace", "fermer l'espace"),
        "account.purge_pending": _w(
            "programmé l'effacement des données de l'espace",
            "programmer l'effacement des données de l'espace",
        ),
        "account.purged": _w("effacé les données de l'espace", "effacer les données de l'espace"),
        "code.issue": _w("émis un code provisoire", "émettre un code provisoire"),
        "death.record": _w("enregistré un décès", "enregistrer un décès"),
        "representation.manage": _w(
            "modifié une représentation légale", "modifier une représentation légale"
        ),
        "representation.end": _w(
            "mis fin à la représentation légale à la majorité",
            "mettre fin à la représentation légale à la majorité",
        ),
        # the former DMP
        "dmp.import": _w(
            "repris un document de votre ancien DMP", "reprendre un document de votre ancien DMP"
        ),
        "dmp.ledger.read": _w(
            "consulté le suivi de la reprise de l'ancien DMP",
            "consulter le suivi de la reprise de l'ancien DMP",
        ),
        "dmp.quarantine": _w(
            "mis de côté un document de l'ancien DMP à vérifier",
            "mettre de côté un document de l'ancien DMP à vérifier",
        ),
        "dmp.close": _w("fermé votre ancien DMP", "fermer votre ancien DMP"),
        "directory.manage": _w(
            "mis à jour l'annuaire des professionnels",
            "mettre à jour l'annuaire des professionnels",
        ),
        # access of professionals
        "access.emergency": _w(
            "accédé à votre dossier en urgence", "accéder à votre dossier en urgence"
        ),
        "access.care_team": _w(
            "déclaré dans votre équipe de soins", "se déclarer dans votre équipe de soins", _P
        ),
        "access.manage": _w("modifié vos paramètres d'accès", "modifier vos paramètres d'accès"),
        "access.read": _w("consulté vos paramètres d'accès", "consulter vos paramètres d'accès"),
        "access.explain": _w(
            "vérifié une règle d'accès (diagnostic)", "vérifier une règle d'accès (diagnostic)"
        ),
        "access.authorise": _w("autorisé un professionnel", "autoriser un professionnel"),
        "access.revoke": _w("retiré une autorisation", "retirer une autorisation"),
        "access.block": _w("bloqué un professionnel", "bloquer un professionnel"),
        "access.unblock": _w("débloqué un professionnel", "débloquer un professionnel"),
        "access.treating_doctor": _w("déclaré un médecin traitant", "déclarer un médecin traitant"),
        "access.settings": _w("modifié vos paramètres d'accès", "modifier vos paramètres d'accès"),
        # documents
        "content.write": _w("ajouté un contenu", "ajouter un contenu"),
        "content.read": _w("consulté un contenu", "consulter un contenu"),
        "document.add": _w("ajouté un document", "ajouter un document"),
        "document.read": _w("consulté un document", "consulter un document"),
        "document.search": _w(
            "consulté la liste de vos documents", "consulter la liste de vos documents"
        ),
        "document.mask": _w("masqué un document", "masquer un document"),
        "document.unmask": _w("rendu visible un document", "rendre visible un document"),
        "document.release": _w(
            "rendu visible un résultat après la consultation d'annonce",
            "rendre visible un résultat après la consultation d'annonce",
        ),
        "document.notice": _w(
            "prévenu qu'un résultat vous sera présenté en consultation",
            "vous prévenir qu'un résultat vous sera présenté en consultation",
            _H,
        ),
        "document.replace": _w("remplacé un document", "remplacer un document"),
        "document.delete": _w("supprimé un document", "supprimer un document"),
        # profil médical and measures
        "profile.read": _w("consulté votre profil médical", "consulter votre profil médical"),
        "profile.write": _w("modifié votre profil médical", "modifier votre profil médical"),
        "measure.read": _w("consulté vos mesures", "consulter vos mesures"),
        "measure.write": _w("ajouté une mesure", "ajouter une mesure"),
        # the operator's duties
        "keys.rotate": _w(
            "renouvelé les clés de chiffrement", "renouveler les clés de chiffrement"
        ),
        "audit.read": _w("consulté l'historique des accès", "consulter l'historique des accès"),
        "audit.trail": _w("vérifié la trace d'audit", "vérifier la trace d'audit"),
        # secure messaging
        "thread.start": _w(
            "commencé une conversation avec vous", "commencer une conversation avec vous"
        ),
        "thread.read": _w("lu une conversation", "lire une conversation"),
        "thread.reply": _w("répondu dans une conversation", "répondre dans une conversation"),
        "thread.close": _w("clos une conversation", "clore une conversation"),
        "thread.archive": _w(
            "archivé ou désarchivé une conversation", "archiver ou désarchiver une conversation"
        ),
        "inbox.read": _w("consulté la messagerie", "consulter la messagerie"),
        "attachment.read": _w("ouvert une pièce jointe", "ouvrir une pièce jointe"),
        "attachment.file": _w(
            "enregistré une pièce jointe dans vos documents",
            "enregistrer une pièce jointe dans vos documents",
        ),
        "message.receive": _w(
            "transmis un message reçu par messagerie sécurisée",
            "transmettre un message reçu par messagerie sécurisée",
        ),
        "message.expire": _w(
            "effacé un message arrivé au terme de sa conservation",
            "effacer un message arrivé au terme de sa conservation",
        ),
        "notification.send": _w("envoyé une notification", "vous envoyer une notification", _H),
        # agenda and prevention
        "agenda.read": _w("consulté votre agenda", "consulter votre agenda"),
        "agenda.write": _w("modifié votre agenda", "modifier votre agenda"),
        "reminders.read": _w(
            "consulté vos rappels de prévention", "consulter vos rappels de prévention"
        ),
        "reminders.settings": _w(
            "modifié vos préférences de rappels", "modifier vos préférences de rappels"
        ),
        "reminder.send": _w(
            "envoyé un rappel de prévention", "vous envoyer un rappel de prévention", _H
        ),
        # referenced apps: the patient's consents, and the référencement (vendors, authorities)
        "consent.grant": _w(
            "autorisé une application à accéder à votre espace",
            "autoriser une application à accéder à votre espace",
        ),
        "consent.narrow": _w(
            "réduit les droits d'une application", "réduire les droits d'une application"
        ),
        "consent.revoke": _w(
            "retiré l'autorisation d'une application",
            "retirer l'autorisation d'une application",
        ),
        "consent.read": _w(
            "consulté la liste des applications autorisées",
            "consulter la liste des applications autorisées",
        ),
        "catalogue.apply": _w(
            "déposé une demande de référencement", "déposer une demande de référencement"
        ),
        "catalogue.review": _w(
            "instruit une demande de référencement", "instruire une demande de référencement"
        ),
        "catalogue.opinion": _w("rendu l'avis de la commission", "rendre l'avis de la commission"),
        "catalogue.decide": _w(
            "pris une décision de référencement", "prendre une décision de référencement"
        ),
        "catalogue.withdraw": _w(
            "retiré une application du catalogue", "retirer une application du catalogue"
        ),
        "catalogue.expire": _w(
            "constaté la fin d'une convention", "constater la fin d'une convention"
        ),
        "catalogue.read": _w(
            "consulté un dossier de référencement", "consulter un dossier de référencement"
        ),
        "oauth.code": _w(
            "autorisé la connexion d'une application",
            "autoriser la connexion d'une application",
        ),
        "oauth.token": _w(
            "ouvert une connexion à votre espace", "ouvrir une connexion à votre espace"
        ),
        "oauth.refresh": _w(
            "renouvelé sa connexion à votre espace", "renouveler sa connexion à votre espace"
        ),
        "oauth.reuse": _w(
            "présenté une autorisation déjà utilisée, et sa connexion a été coupée",
            "présenter une autorisation déjà utilisée",
        ),
        "oauth.revoke": _w(
            "mis fin à sa connexion à votre espace", "mettre fin à sa connexion à votre espace"
        ),
        "oauth.refused": _w(
            "tenté sans succès de se connecter à votre espace", "se connecter à votre espace"
        ),
        # research
        "research.extract": _w(
            "utilisé vos données, pseudonymisées, pour une étude autorisée",
            "utiliser vos données, pseudonymisées, pour une étude autorisée",
        ),
    }
)

#: The holder's own consultations of their space: left out of the history they read by
#: default (they know they looked), shown on request.
HOLDER_VIEWS: Final = frozenset(
    {
        "patient.read",
        "document.read",
        "document.search",
        "content.read",
        "profile.read",
        "measure.read",
        "access.read",
        "audit.read",
        "thread.read",
        "inbox.read",
        "attachment.read",
        "agenda.read",
        "reminders.read",
        "consent.read",
    }
)

_UNKNOWN: Final = Wording("effectué une opération", "effectuer une opération")


def wording_of(action: str) -> Wording:
    """The wording of *action*; a neutral one for an action that has none (never the code)."""
    return WORDINGS.get(action, _UNKNOWN)


def third_person(action: str) -> str:
    """What was done, after a third-person subject: "a consulté un document",
    "s'est connecté", "vous a envoyé une notification"."""
    wording = wording_of(action)
    if wording.conjugation is Conjugation.PRONOMINAL:
        return f"s'est {wording.participle}"
    if wording.conjugation is Conjugation.TO_HOLDER:
        return f"vous a {wording.participle}"
    return f"a {wording.participle}"


_VOWELS: Final = frozenset("aeiouéèêh")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentence(who: str, action: str, outcome: str = "success", *, holder: bool = False) -> str:
    """One line of the history as a French sentence.

    :param who: who acted, in words ("Dr Martin (Médecin)", "l'Assurance Maladie").
    :param action: the audited action name.
    :param outcome: ``success``, ``denied`` or ``failure``.
    :param holder: the holder acted themselves: the sentence speaks to them ("Vous vous êtes
        connecté").
    """
    wording = wording_of(action)
    if outcome != "success":
        verb = "avez tenté" if holder else "a tenté"
        subject = "vous" if holder else who
        ending = "accès refusé" if outcome == "denied" else "l'opération a échoué"
        infinitive = wording.infinitive
        if holder and infinitive.startswith("se "):
            infinitive = "vous " + infinitive[3:]
        elif holder and infinitive.startswith("s'"):
            infinitive = "vous " + infinitive[2:]
        elif holder and infinitive.startswith("vous "):
            infinitive = infinitive[5:]
        linked = f"d'{infinitive}" if infinitive[:1] in _VOWELS else f"de {infinitive}"
        return _capital(f"{subject} {verb} {linked} : {ending}.")
    if holder:
        if wording.conjugation is Conjugation.PRONOMINAL:
            return f"Vous vous êtes {wording.participle}."
        return f"Vous avez {wording.participle}."
    return _capital(f"{who} {third_person(action)}.")
