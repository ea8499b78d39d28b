"""Writes the development set's PDF pages (run from this folder: python3 tools/make_pdfs.py).

The PDFs are committed; this script only documents how they were made (fpdf2 2.8.9, the
built-in Helvetica font, so the text is real text that a PDF parser can read).
"""
from fpdf import FPDF

PAGES = {
    "../comptoir/traiteur.pdf": (
        "Le Comptoir des Halles - Service traiteur et vente à emporter",
        [
            ("À emporter", "Tous les plats de l'ardoise du midi peuvent être emportés, dans des "
             "barquettes compostables. Il suffit de commander par téléphone avant 11 h 30 pour un "
             "retrait entre 12 h et 13 h 30 ; les commandes passées plus tard sont servies dans la "
             "limite des plats disponibles. Nous ne livrons pas à domicile nous-mêmes et ne "
             "travaillons avec aucune plateforme de livraison."),
            ("Traiteur", "Pour vos fêtes de famille et vos réunions de bureau, le chef prépare des "
             "buffets froids à partir de dix personnes, à 28 EUR par personne, avec terrines, "
             "salades de saison, fromages de la Mère Richard et tartes. La commande doit nous "
             "parvenir au moins cinq jours à l'avance ; la vaisselle peut être prêtée contre une "
             "caution de 150 EUR, rendue au retour de la vaisselle propre."),
            ("Fêtes de fin d'année", "Le menu de Noël à emporter est disponible du 20 au 24 décembre, "
             "sur commande jusqu'au 15 décembre. Les bûches sont faites maison et se commandent "
             "pour six ou huit parts."),
        ],
    ),
    "../azur/conditions-annulation.pdf": (
        "Voyages Azur - Conditions d'annulation et de modification",
        [
            ("Annulation par le voyageur", "Toute annulation doit nous être notifiée par écrit, "
             "par e-mail ou par lettre. Les frais retenus dépendent du délai avant le départ : "
             "plus de 60 jours avant le départ, 10 % du prix du voyage ; de 59 à 30 jours, 30 % ; "
             "de 29 à 15 jours, 60 % ; à moins de 15 jours, la totalité du prix reste due. Les "
             "frais de visa déjà engagés et la prime d'assurance ne sont jamais remboursés."),
            ("Modification", "Un changement de nom d'un voyageur est possible jusqu'à 15 jours "
             "avant le départ, moyennant 50 EUR de frais de dossier auxquels s'ajoutent les frais "
             "facturés par la compagnie aérienne. Un changement de date est traité comme une "
             "annulation suivie d'une nouvelle réservation."),
            ("Annulation par l'agence", "Si nous devons annuler un voyage pour des raisons de "
             "sécurité signalées par le ministère des Affaires étrangères, les sommes versées "
             "sont remboursées en totalité dans un délai de 14 jours, sans autre indemnité."),
            ("Réclamations", "Toute réclamation doit être adressée dans les 30 jours suivant le "
             "retour. À défaut de réponse satisfaisante dans un délai de 60 jours, vous pouvez "
             "saisir gratuitement le Médiateur du Tourisme et du Voyage."),
        ],
    ),
}

for path, (title, sections) in PAGES.items():
    pdf = FPDF()
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, text in sections:
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.output(path)
